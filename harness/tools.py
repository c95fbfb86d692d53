"""Find or build the external programs: env var, then PATH, then a cache keyed by version, then build.

The cache lives outside the checkout (shared by every clone on the machine) and a build writes into a
temporary directory that is renamed into place, so an interrupted build never leaves a half tool behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from harness.util import tail

console = Console(stderr=True)

LND_BUILD_TAGS = "signrpc walletrpc chainrpc invoicesrpc peersrpc"
MIN_GO = (1, 25)


class ToolError(RuntimeError):
    pass


def cache_root() -> Path:
    explicit = os.environ.get("VOLTA_TOOLS_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "volta-lightning" / "tools"


@dataclass(frozen=True)
class ToolSpec:
    """One external program set, built together (btcd with btcctl, lnd with lncli)."""

    name: str
    version: str
    binaries: dict[str, str]  # binary name -> environment variable that may name it
    build: Callable[[ToolSpec, Path], list[str]] = field(repr=False)  # (spec, bin_dir) -> command

    @property
    def cache_dir(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}"


@dataclass
class LocatedTool:
    name: str
    version: str
    paths: dict[str, Path]
    source: str  # "env", "PATH", "cache" or "built"
    build_seconds: float | None = None

    def __getitem__(self, binary: str) -> Path:
        return self.paths[binary]


# -- build recipes ------------------------------------------------------------------------------------


def _go_build_env() -> dict[str, str]:
    check_go()
    return {**os.environ, "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0")}


def check_go() -> None:
    go = shutil.which("go")
    if go is None:
        raise ToolError("Go is not installed: install Go 1.25 or newer (https://go.dev/doc/install) and retry.")
    output = subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"go(\d+)\.(\d+)", output)
    if not match or (int(match[1]), int(match[2])) < MIN_GO:
        raise ToolError(f"Go is too old ({output.strip()}): install Go 1.25 or newer and retry.")


def build_btcd(spec: ToolSpec, bin_dir: Path) -> list[str]:
    # go install writes to GOBIN, which _build_env points at bin_dir.
    module = "github.com/btcsuite/btcd"
    return ["go", "install", f"{module}@{spec.version}", f"{module}/cmd/btcctl@{spec.version}"]


def build_lnd(spec: ToolSpec, bin_dir: Path) -> list[str]:
    # lnd's go.mod has replace directives, which `go install pkg@version` refuses: build inside the
    # module's own (read-only, checksum-verified) copy in the module cache instead.
    module_dir = _go_module_dir("github.com/lightningnetwork/lnd", spec.version)
    return [
        "sh", "-c",
        f'cd "{module_dir}" && go build -trimpath -tags "{LND_BUILD_TAGS}" -o "{bin_dir}/" ./cmd/lnd ./cmd/lncli',
    ]


def build_toxiproxy(spec: ToolSpec, bin_dir: Path) -> list[str]:
    # Built inside the module's copy in the module cache, like lnd, because the binary must be named
    # toxiproxy-server (`go install .../cmd/server` would call it `server`). The version is stamped in so
    # `toxiproxy-server --version` says which one runs.
    module = "github.com/Shopify/toxiproxy/v2"
    module_dir = _go_module_dir(module, spec.version)
    stamp = f"-X {module}.Version={spec.version.lstrip('v')}"
    return ["sh", "-c", f'cd "{module_dir}" && go build -trimpath -ldflags "{stamp}" '
                        f'-o "{bin_dir}/toxiproxy-server" ./cmd/server']


def build_starknet_devnet(spec: ToolSpec, bin_dir: Path) -> list[str]:
    if shutil.which("cargo") is None:
        raise ToolError("cargo is not installed: install Rust with rustup (https://rustup.rs) and retry.")
    root = bin_dir.parent
    return ["cargo", "install", "starknet-devnet", "--version", spec.version, "--locked", "--root", str(root)]


def _go_module_dir(module: str, version: str) -> str:
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True, text=True, env=_go_build_env(), cwd=tempfile.gettempdir(),
    )
    if result.returncode != 0:
        raise ToolError(f"could not download {module}@{version}: {result.stdout or result.stderr}")
    return json.loads(result.stdout)["Dir"]


def _build_env(spec: ToolSpec, bin_dir: Path) -> dict[str, str]:
    env = {**_go_build_env(), "GOBIN": str(bin_dir)} if spec.name in GO_TOOLS else dict(os.environ)
    if spec.name == "starknet-devnet":
        # The published crate sets no [profile]: `cargo install` already uses the light release profile
        # (no LTO, 16 codegen units). Keeping the target dir in the cache makes an interrupted build resumable.
        env.setdefault("CARGO_TARGET_DIR", str(cache_root().parent / "cargo-target"))
    return env


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec("btcd", "v0.26.0", {"btcd": "BTCD_BIN", "btcctl": "BTCCTL_BIN"}, build_btcd),
        ToolSpec("lnd", "v0.21.2-beta", {"lnd": "LND_BIN", "lncli": "LNCLI_BIN"}, build_lnd),
        ToolSpec("starknet-devnet", "0.8.1", {"starknet-devnet": "STARKNET_DEVNET_BIN"}, build_starknet_devnet),
        # v2.12.0 is the newest v2 on proxy.golang.org, although its `-versions` list stops at v2.5.0.
        ToolSpec("toxiproxy", "v2.12.0", {"toxiproxy-server": "TOXIPROXY_BIN"}, build_toxiproxy),
    )
}
GO_TOOLS = ("btcd", "lnd", "toxiproxy")


# -- locating -----------------------------------------------------------------------------------------


def locate(name: str, build: bool = True) -> LocatedTool:
    """Where each binary of the tool is: its environment variable, else PATH, else the cache (built
    there if missing)."""
    spec = TOOLS[name]
    found = {binary: _from_env_or_path(binary, env_var) for binary, env_var in spec.binaries.items()}
    if all(found.values()):
        paths = {binary: path for binary, (path, _) in found.items()}  # type: ignore[misc]
        sources = sorted({source for _, source in found.values()})  # type: ignore[misc]
        return LocatedTool(spec.name, "as found", paths, "+".join(sources))
    cached = _from_cache(spec)
    if cached is None:
        if not build:
            raise ToolError(f"{name} {spec.version} not found; run `python -m harness tools` to build it")
        cached = _build(spec)
    for binary, hit in found.items():
        if hit:
            cached.paths[binary] = hit[0]
    return cached


def needs_build(name: str) -> bool:
    """Whether `locate(name)` would have to build: not named by its variables, on PATH, or in the cache."""
    spec = TOOLS[name]
    found = [_from_env_or_path(binary, env_var) for binary, env_var in spec.binaries.items()]
    return not all(found) and _from_cache(spec) is None


def build_at_once(names: list[str], log_dir: Path) -> dict[str, int]:
    """Build several tools at the same time, one process each (each tool's lock still guards its cache):
    on 2 cores the Go and Rust builds overlap instead of adding up. Returns each build's exit code."""
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = {}
    for name in names:
        with (log_dir / f"{name}.log").open("w") as log:
            processes[name] = subprocess.Popen([sys.executable, "-m", "harness", "tools", name],
                                               stdout=log, stderr=subprocess.STDOUT)
    with console.status(f"building {', '.join(names)} at once (logs in {log_dir})"):
        return {name: process.wait() for name, process in processes.items()}


def _from_env_or_path(binary: str, env_var: str) -> tuple[Path, str] | None:
    explicit = os.environ.get(env_var)
    if explicit:
        if not Path(explicit).is_file():
            raise ToolError(f"{env_var}={explicit} is not a file")
        return Path(explicit), "env"
    on_path = shutil.which(binary)
    return (Path(on_path), "PATH") if on_path else None


def _from_cache(spec: ToolSpec) -> LocatedTool | None:
    bin_dir = spec.cache_dir / "bin"
    paths = {binary: bin_dir / binary for binary in spec.binaries}
    if not all(path.is_file() for path in paths.values()):
        return None
    info_file = spec.cache_dir / "build-info.json"
    seconds = json.loads(info_file.read_text()).get("seconds") if info_file.exists() else None
    return LocatedTool(spec.name, spec.version, paths, "cache", seconds)


def _build(spec: ToolSpec) -> LocatedTool:
    spec.cache_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = spec.cache_dir.parent / f"{spec.cache_dir.name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another clone may be building the same tool right now
        cached = _from_cache(spec)
        if cached:
            return cached
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.cache_dir.name}-", dir=spec.cache_dir.parent))
        try:
            seconds = _run_build(spec, staging)
            (staging / "build-info.json").write_text(
                json.dumps({"seconds": round(seconds, 1), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ")})
            )
            shutil.rmtree(spec.cache_dir, ignore_errors=True)
            staging.rename(spec.cache_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    located = _from_cache(spec)
    if located is None:
        raise ToolError(f"build of {spec.name} finished but its binaries are missing in {spec.cache_dir}")
    located.source = "built"
    return located


def _run_build(spec: ToolSpec, staging: Path) -> float:
    bin_dir = staging / "bin"
    bin_dir.mkdir(parents=True)
    log_path = staging / "build.log"
    command = spec.build(spec, bin_dir)
    started = time.monotonic()
    with log_path.open("w") as log, Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task(f"building {spec.name} {spec.version}", total=None)
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=_build_env(spec, bin_dir), cwd=tempfile.gettempdir()
        )
        while process.poll() is None:
            progress.update(task, description=f"building {spec.name} {spec.version}: {_last_line(log_path)}")
            time.sleep(1)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise ToolError(
            f"building {spec.name} {spec.version} failed (exit {process.returncode}); "
            f"last lines of {log_path}:\n{tail(log_path, 20)}"
        )
    console.print(f"built {spec.name} {spec.version} in {seconds:.0f}s")
    return seconds


def _last_line(path: Path) -> str:
    last = tail(path, 1).strip()
    return last[:70]


def tool_version(located: LocatedTool) -> str:
    """What the first binary says of its own version."""
    binary = next(iter(located.paths.values()))
    try:
        result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else "?"
