"""Compile the VOLTA stand-in Cairo contracts to Sierra + CASM artifacts.

Route (see README.md): the Cairo 2.1.0 compiler shipped inside the PyPI sdist of cairo-lang 0.12.3
compiles the sources to Sierra 1.3.0; `starknet-sierra-compile` 2.17.0 from crates.io (the same
cairo-lang version starknet-devnet 0.8.1 uses for its own Sierra->CASM step) produces the CASM.

Usage:
    python harness/contracts/build.py            # (re)build compiled/*.json and compiled/manifest.json
    python harness/contracts/build.py --check    # rebuild in a temp dir, fail if compiled/ is stale
    python harness/contracts/build.py --compilers  # only make sure both compilers are in the cache (`make tools`)

Environment overrides:
    CAIRO_COMPILE_BIN    path to a Cairo 2.1.0 `starknet-compile` (its corelib must sit beside bin/)
    SIERRA_COMPILE_BIN   path to a `starknet-sierra-compile` 2.17.0
    VOLTA_TOOLS_CACHE    tool cache root, shared with btcd and lnd (default ~/.cache/volta-lightning/tools)
    VOLTA_CARGO_JOBS     cargo -j for the one-time compiler build (default 1)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from harness.tools import cache_root

HERE = Path(__file__).resolve().parent
COMPILED_DIR = HERE / "compiled"
MANIFEST_NAME = "manifest.json"

CAIRO_LANG_VERSION = "0.12.3"
CAIRO_LANG_SDIST_SHA256 = "651abdaa5f911d1d8f5605749e3540e7fc4efb7fb625925e5a499c4ca04fcc85"
CAIRO_COMPILER_VERSION = "2.1.0"
SIERRA_COMPILE_VERSION = "2.17.0"
SIERRA_COMPILER_SUBDIR = "starkware/starknet/compiler/v1/sierra-compiler-major-1"

# Artifact name -> contract path inside the `volta` crate (cairo_project.toml).
CONTRACTS: dict[str, str] = {
    "VUSD": "volta::vusd::VUSD",
    "Vault": "volta::vault::Vault",
    "PriceOracle": "volta::price_oracle::PriceOracle",
}


def tools_dir() -> Path:
    """The harness's tool cache, where btcd, lnd and starknet-devnet are built too (one variable for all)."""
    return cache_root()


def log(message: str) -> None:
    print(f"[contracts] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, text=True, capture_output=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr}")
    return result


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- Cairo -> Sierra compiler (cairo-lang 0.12.3 sdist from PyPI) ---------------------------------


def cairo_compiler_root() -> Path:
    return tools_dir() / f"cairo-lang-{CAIRO_LANG_VERSION}" / "sierra-compiler-major-1"


def download_cairo_lang_sdist(dest: Path) -> Path:
    spec = f"cairo-lang=={CAIRO_LANG_VERSION}"
    log(f"downloading {spec} sdist from PyPI (pip download)")
    run([sys.executable, "-m", "pip", "download", spec, "--no-deps", "--no-binary", ":all:", "-d", str(dest)])
    archive = dest / f"cairo-lang-{CAIRO_LANG_VERSION}.zip"
    if sha256_of(archive) != CAIRO_LANG_SDIST_SHA256:
        raise RuntimeError(f"unexpected sha256 for {archive}")
    return archive


def extract_compiler(archive: Path, target: Path) -> None:
    prefix = f"cairo-lang-{CAIRO_LANG_VERSION}/{SIERRA_COMPILER_SUBDIR}/"
    staging = target.parent / (target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                out = staging / member[len(prefix) :]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(zf.read(member))
    for binary in (staging / "bin").iterdir():
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def ensure_cairo_compiler() -> Path:
    override = os.environ.get("CAIRO_COMPILE_BIN")
    if override:
        return Path(override)
    binary = cairo_compiler_root() / "bin" / "starknet-compile"
    if not binary.exists():
        cairo_compiler_root().parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            extract_compiler(download_cairo_lang_sdist(Path(tmp)), cairo_compiler_root())
    return binary


# --- Sierra -> CASM compiler (crates.io starknet-sierra-compile 2.17.0) ---------------------------


def sierra_compiler_root() -> Path:
    return tools_dir() / f"starknet-sierra-compile-{SIERRA_COMPILE_VERSION}"


def cargo_install_sierra_compiler(root: Path) -> None:
    cargo = shutil.which("cargo")
    if cargo is None:
        raise RuntimeError("cargo not found; install Rust or set SIERRA_COMPILE_BIN")
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(tools_dir().parent / "cargo-target-sierra"))
    jobs = os.environ.get("VOLTA_CARGO_JOBS", "1")
    cmd = [cargo, "install", "starknet-sierra-compile", "--version", SIERRA_COMPILE_VERSION]
    cmd += ["--locked", "-j", jobs, "--root", str(root)]
    if shutil.which("nice"):
        cmd = ["nice", "-n", "10", *cmd]
    log(f"building starknet-sierra-compile {SIERRA_COMPILE_VERSION} (one-time, several minutes)")
    subprocess.run(cmd, check=True, env=env)


def ensure_sierra_compiler() -> Path:
    override = os.environ.get("SIERRA_COMPILE_BIN")
    if override:
        return Path(override)
    binary = sierra_compiler_root() / "bin" / "starknet-sierra-compile"
    if not binary.exists():
        cargo_install_sierra_compiler(sierra_compiler_root())
    return binary


def tool_version(binary: Path) -> str:
    return run([str(binary), "--version"]).stdout.strip()


# --- compilation ------------------------------------------------------------------------------------


def compile_sierra(cairo_bin: Path, contract_path: str, out: Path) -> None:
    run([str(cairo_bin), str(HERE), "--contract-path", contract_path, str(out)])


def compile_casm(sierra_bin: Path, sierra: Path, out: Path) -> None:
    # Pythonic hints match what starknet-devnet 0.8.1 generates; they do not enter the class hash.
    run([str(sierra_bin), "--add-pythonic-hints", str(sierra), str(out)])


def sierra_version(sierra: Path) -> str:
    program = json.loads(sierra.read_text())["sierra_program"]
    return ".".join(str(int(felt, 16)) for felt in program[:3])


HASH_KEYS = ("class_hash", "compiled_class_hash", "compiled_class_hash_poseidon")


def compute_hashes(sierra: Path, casm: Path) -> dict[str, str]:
    """Class hashes as starknet-py computes them for a declare; {} when starknet-py is missing."""
    try:
        from starknet_py.common import create_casm_class, create_sierra_compiled_contract
        from starknet_py.hash.casm_class_hash import compute_casm_class_hash
        from starknet_py.hash.hash_method import HashMethod
        from starknet_py.hash.sierra_class_hash import compute_sierra_class_hash
    except ImportError:
        return {}
    sierra_class = create_sierra_compiled_contract(sierra.read_text())
    casm_class = create_casm_class(casm.read_text())
    return {
        "class_hash": hex(compute_sierra_class_hash(sierra_class)),
        # Starknet >= 0.14.1 (and devnet 0.8.1) expect the Blake2s CASM hash in a declare.
        "compiled_class_hash": hex(compute_casm_class_hash(casm_class, HashMethod.BLAKE2S)),
        "compiled_class_hash_poseidon": hex(compute_casm_class_hash(casm_class, HashMethod.POSEIDON)),
    }


def build_all(out_dir: Path) -> dict[str, Any]:
    cairo_bin, sierra_bin = ensure_cairo_compiler(), ensure_sierra_compiler()
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "cairo_compiler": tool_version(cairo_bin),
        "sierra_compiler": tool_version(sierra_bin),
        "contracts": {},
    }
    for name, contract_path in CONTRACTS.items():
        sierra, casm = out_dir / f"{name}.sierra.json", out_dir / f"{name}.casm.json"
        compile_sierra(cairo_bin, contract_path, sierra)
        compile_casm(sierra_bin, sierra, casm)
        entry: dict[str, Any] = {"contract_path": contract_path, "sierra_version": sierra_version(sierra)}
        entry.update(compute_hashes(sierra, casm))
        manifest["contracts"][name] = entry
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def artifact_names() -> list[str]:
    names = [f"{n}.{kind}.json" for n in CONTRACTS for kind in ("sierra", "casm")]
    return [*names, MANIFEST_NAME]


def without_hashes(manifest: dict[str, Any]) -> dict[str, Any]:
    contracts = {
        name: {k: v for k, v in entry.items() if k not in HASH_KEYS}
        for name, entry in manifest["contracts"].items()
    }
    return {**manifest, "contracts": contracts}


def same_artifact(name: str, committed: Path, fresh: Path) -> bool:
    old, new = json.loads(committed.read_text()), json.loads(fresh.read_text())
    hashes_missing = any("class_hash" not in e for e in new.get("contracts", {}).values())
    if name == MANIFEST_NAME and hashes_missing:
        log("starknet-py not importable: class hashes in the manifest were not re-checked")
        return without_hashes(old) == without_hashes(new)
    return old == new


def stale_artifacts(fresh_dir: Path) -> list[str]:
    stale = []
    for name in artifact_names():
        committed = COMPILED_DIR / name
        if not committed.exists() or not same_artifact(name, committed, fresh_dir / name):
            stale.append(name)
    return stale


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        build_all(Path(tmp))
        stale = stale_artifacts(Path(tmp))
    if stale:
        log("stale artifacts (run `python harness/contracts/build.py`): " + ", ".join(stale))
        return 1
    log("compiled/ is up to date with src/")
    return 0


def print_summary(manifest: dict[str, Any]) -> None:
    print(f"cairo compiler : {manifest['cairo_compiler']}")
    print(f"sierra compiler: {manifest['sierra_compiler']}")
    for name, entry in manifest["contracts"].items():
        print(f"{name}: sierra {entry['sierra_version']}")
        for key in ("class_hash", "compiled_class_hash"):
            print(f"  {key:<20} {entry.get(key, '(starknet-py not installed)')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if compiled/ differs from a rebuild")
    parser.add_argument("--compilers", action="store_true", help="only fetch or build both compilers, with progress")
    args = parser.parse_args(argv)
    if args.compilers:
        log(f"cairo compiler: {ensure_cairo_compiler()}")
        log(f"sierra compiler: {ensure_sierra_compiler()}")
        return 0
    if args.check:
        return check()
    print_summary(build_all(COMPILED_DIR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
