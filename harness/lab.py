"""JupyterLab for the research notebooks, and the full research run in one command.

- `python -m harness.lab kernel`: register the project's kernel (`volta-lightning`, this venv's Python) where
  JupyterLab finds it: `<sys.prefix>/share/jupyter/kernels/`. Running it again replaces the spec.
- `python -m harness.lab serve` (`make lab`): register the kernel, then JupyterLab on 127.0.0.1 with a token,
  no browser unless `--browser`, opened on `notebooks/`. Its environment says where the regtest network's
  `state.json` is (VOLTA_REGTEST_STATE, absolute): a kernel starts in the notebook's folder, where the
  harness's default (`./.regtest/state.json`) would not find it; kernels inherit the server's environment.
- `python -m harness.lab research NOTEBOOK...` (`make research`): every notebook at its own full N (or
  `--n`), the network-free ones first, then those that drive the network, on the one that is up or on one
  it brings up (and takes down again). Each notebook's figures, results.json (provenance) and executed copy
  land in artifacts/notebooks/<notebook>/ (scenarios/notebook.py); the run's summary in research.json there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.process import ManagedProcess
from harness.util import Timeouts

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "volta-lightning"
KERNEL_DISPLAY_NAME = "VOLTA Lightning (.venv)"
# The two ways a notebook reaches the running network (scenarios/notebook.py): a notebook that calls neither
# is network-free.
NETWORK_CALLS = ("regtest_target(", "state_file(")
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # nbclient's tracebacks are coloured for a terminal


def register_kernel(prefix: Path | None = None) -> Path:
    """Install the kernel spec (argv: this interpreter, absolute) under `prefix` (default: this venv).

    jupyter_client's `install_kernel_spec` removes an existing spec of that name first, so this is idempotent.
    """
    from ipykernel.kernelspec import install

    return Path(install(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME,
                        prefix=str(prefix or sys.prefix)))


def regtest_state_path(environ: Mapping[str, str]) -> Path:
    """The state.json notebooks should read: VOLTA_REGTEST_STATE if set, else the one `python -m harness up`
    writes (VOLTA_REGTEST_DIR, default .regtest/ at the repository's root), made absolute."""
    if environ.get("VOLTA_REGTEST_STATE"):
        return Path(environ["VOLTA_REGTEST_STATE"]).resolve()
    return Path(environ.get("VOLTA_REGTEST_DIR") or REPO_ROOT / ".regtest").resolve() / "state.json"


def notebook_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` plus absolute VOLTA_REGTEST_STATE and VOLTA_REGTEST_DIR, so that a kernel started in any
    folder drives the network `python -m harness up` (run from the repository's root) started."""
    env = dict(environ)
    env.setdefault("VOLTA_REGTEST_DIR", str(Path(env.get("VOLTA_REGTEST_DIR") or REPO_ROOT / ".regtest").resolve()))
    env["VOLTA_REGTEST_STATE"] = str(regtest_state_path(environ))
    return env


def lab_command(root_dir: Path = NOTEBOOKS_DIR, port: int | None = None, token: str | None = None,
                open_browser: bool = False) -> list[str]:
    """JupyterLab on loopback only, opened on `root_dir`, with the project's kernel for new notebooks.

    Without `token`, Jupyter makes a random one and prints the URL that carries it."""
    command = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.root_dir={root_dir}", f"--ServerApp.open_browser={open_browser}",
               f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}"]
    if port is not None:
        command += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]  # that port or fail, not another
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    if os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI run as root; Jupyter refuses it without this flag
    return command


class LabServer(ManagedProcess):
    """A headless JupyterLab on a given loopback port and token, for tests: ready once its REST API answers;
    `stop()` is SIGTERM (it shuts its kernels down), then SIGKILL after PROCESS_STOP; its log in `workdir`."""

    def __init__(self, workdir: Path, port: int, token: str, env: Mapping[str, str],
                 root_dir: Path = NOTEBOOKS_DIR) -> None:
        super().__init__("jupyterlab", workdir)
        self.port, self.token, self.root_dir, self._env = port, token, root_dir, dict(env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return lab_command(self.root_dir, self.port, self.token)

    def environment(self) -> dict[str, str]:
        return self._env

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        import requests

        def answers() -> bool:
            return requests.get(f"{self.url}/api/status", headers=self.auth_header(), timeout=5).ok

        self.wait_answering(answers, "REST API answering", transient=(requests.ConnectionError,), timeout=timeout)

    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}


def serve(port: int | None, open_browser: bool) -> int:
    spec = register_kernel()
    env = notebook_environment(os.environ)
    state = Path(env["VOLTA_REGTEST_STATE"])
    print(f"kernel {KERNEL_NAME!r} ({KERNEL_DISPLAY_NAME}) registered in {spec}")
    print(f"notebooks read the regtest network from {state} "
          f"({'up' if network_up(state) else 'not up: `python -m harness up` starts one'})", flush=True)  # before exec
    command = lab_command(port=port, open_browser=open_browser)
    os.execve(command[0], command, env)  # JupyterLab takes this process: Ctrl-C reaches it directly


def needs_network(notebook: Path) -> bool:
    import nbformat

    cells = nbformat.read(notebook, as_version=4).cells
    return any(call in cell.source for cell in cells if cell.cell_type == "code" for call in NETWORK_CALLS)


def network_up(state: Path) -> bool:
    from harness.state import read_state
    from harness.supervisor import supervisor_alive

    return state.exists() and supervisor_alive(read_state(state))


@dataclass
class NotebookRun:
    notebook: str
    needs_network: bool
    status: str  # "done", "failed" or "not run"
    seconds: float = 0.0
    outputs: str | None = None
    error: str | None = None
    network: str | None = None  # which regtest network it drove, and whether it was up before the run

    def reason(self) -> str:
        """One line for the summary table: where the outputs are, or the error's last line."""
        lines = [line for line in (self.error or "").splitlines() if line.strip()]
        return self.outputs or (lines[-1] if lines else "")


def run_notebook(path: Path, n: int | None, network: bool, out_root: Path) -> NotebookRun:
    from scenarios.notebook import execute

    os.environ["VOLTA_NOTEBOOK_OUT"] = str(out_root / path.stem)  # one folder per notebook, whatever was set
    print(f"\n=== {path.name} ({'drives the regtest network' if network else 'network-free'}, "
          f"N={n or 'its own full N'})", flush=True)
    started = time.monotonic()
    try:
        out = execute(path, n)
    except Exception as exc:  # one failed notebook must not stop the others; its error is reported below
        print(traceback.format_exc(limit=1), file=sys.stderr)
        return NotebookRun(path.stem, network, "failed", time.monotonic() - started,
                           error=ANSI_COLOUR.sub("", str(exc))[-4000:])
    print(f"{path.name}: outputs in {out}", flush=True)
    return NotebookRun(path.stem, network, "done", time.monotonic() - started, outputs=str(out))


def harness_command(verb: str, env: Mapping[str, str]) -> int:
    return subprocess.run([sys.executable, "-m", "harness", verb], cwd=REPO_ROOT, env=dict(env),
                          check=False).returncode


def run_with_network(notebooks: Sequence[Path], n: int | None, bring_up: bool, out_root: Path) -> list[NotebookRun]:
    """Run the notebooks on the network that is up; else bring one up, and down again afterwards."""
    state = Path(os.environ["VOLTA_REGTEST_STATE"])
    started_here = False
    if not network_up(state):
        why = f"no regtest network is up ({state})"
        if not bring_up:
            return [NotebookRun(p.stem, True, "not run", error=f"{why}; --no-network asked not to start one")
                    for p in notebooks]
        print(f"\n{why}: bringing one up with `python -m harness up` (1-3 minutes)", flush=True)
        started_here = harness_command("up", os.environ) == 0 and network_up(state)
        if not started_here:
            return [NotebookRun(p.stem, True, "not run", error=f"{why} and `python -m harness up` did not bring one "
                                f"up at that path (see its output above): run it, then `make research` again")
                    for p in notebooks]
    try:
        runs = [run_notebook(path, n, True, out_root) for path in notebooks]
        for run in runs:
            run.network = f"{state}, {'brought up for this run' if started_here else 'up before this run'}"
        return runs
    finally:
        if started_here:
            harness_command("down", os.environ)


def research(notebooks: Sequence[Path], n: int | None, bring_up: bool, out_root: Path) -> list[NotebookRun]:
    os.environ.update(notebook_environment(os.environ))  # nbclient's kernels inherit this process's environment
    online = [path for path in notebooks if needs_network(path)]
    runs = [run_notebook(path, n, False, out_root) for path in notebooks if path not in online]
    if online:
        runs += run_with_network(online, n, bring_up, out_root)
    return runs


def report(runs: Sequence[NotebookRun], n: int | None, summary_path: Path) -> None:
    """research.json: which commit, machine and N ran which notebook, how long, and where its outputs are
    (each notebook's own results.json there carries its provenance too)."""
    from scenarios.provenance import git_commit, machine

    commit, dirty = git_commit()
    summary = {"commit": commit, "dirty": dirty, "machine": machine(), "n": n or "each notebook's own full N",
               "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "notebooks": [asdict(run) for run in runs]}
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=2))
    print(f"\n{'notebook':32}{'status':10}{'seconds':>7}  outputs / reason")
    for run in runs:
        print(f"{run.notebook:32}{run.status:10}{run.seconds:7.0f}  {run.reason()}")
    print(f"summary: {summary_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("kernel", help=f"register the {KERNEL_NAME!r} kernel in this venv")
    serve_parser = verbs.add_parser("serve", help="JupyterLab on 127.0.0.1 over notebooks/")
    serve_parser.add_argument("--port", type=int, help="default: 8888, or the next free one")
    serve_parser.add_argument("--browser", action="store_true", help="open a browser on the lab's URL")
    research_parser = verbs.add_parser("research", help="run notebooks top to bottom at full N")
    research_parser.add_argument("notebooks", nargs="+", type=Path)
    research_parser.add_argument("--n", type=int, help="VOLTA_NOTEBOOK_N for every notebook (default: each one's own)")
    research_parser.add_argument("--out", type=Path, help="outputs in OUT/<notebook>/ (default: artifacts/notebooks)")
    research_parser.add_argument("--no-network", action="store_true",
                                 help="do not start a regtest network: notebooks that need one are not run")
    args = parser.parse_args(argv)
    if args.verb == "kernel":
        print(register_kernel())
        return 0
    if args.verb == "serve":
        return serve(args.port, args.browser)
    from scenarios.notebook import DEFAULT_OUT

    out_root = (args.out or DEFAULT_OUT).resolve()
    runs = research([path.resolve() for path in args.notebooks], args.n, not args.no_network, out_root)
    report(runs, args.n, out_root / "research.json")
    return 0 if all(run.status == "done" or (args.no_network and run.status == "not run") for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
