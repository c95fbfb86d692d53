"""JupyterLab as a researcher uses it: a headless server (harness/lab.py, as `make lab` starts it) with the
project's kernel; a notebook run through the server as a browser runs it (a session over the REST API, each
cell an execute_request on the kernel's WebSocket channel); the figures it printed checked against its
results.json. The server is stopped (SIGKILL if SIGTERM does not end it); its log is shown on failure and kept
in the test's tmp_path."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
import websocket
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from harness.lab import (
    KERNEL_DISPLAY_NAME,
    KERNEL_NAME,
    NOTEBOOKS_DIR,
    LabServer,
    needs_network,
    notebook_environment,
    register_kernel,
)
from harness.util import free_port

NOTEBOOK = "02_timeouts_slippage.ipynb"  # network-free
N = 100  # VOLTA_NOTEBOOK_N, as tests/notebooks/test_notebooks.py sets it
CELL_TIMEOUT_S = 900  # other suites share these two cores


@dataclass
class CellResult:
    stdout: str = ""
    errors: list[str] = field(default_factory=list)
    mime_types: list[str] = field(default_factory=list)  # of display_data / execute_result: what a page renders


@contextmanager
def log_shown_on_failure(server: LabServer) -> Iterator[None]:
    try:
        yield
    except BaseException:
        print(f"JupyterLab's log, kept at {server.log_path}:\n{server.log_tail(60)}", file=sys.stderr)
        raise


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabServer]:
    """The server `make lab` starts, on a free port, with a known token, its kernel spec in a prefix of its own
    (JUPYTER_PATH) and every Jupyter directory in tmp_path, so the test leaves nothing in the venv or $HOME."""
    prefix = tmp_path / "prefix"
    register_kernel(prefix)
    jupyter_dirs = {name: str(tmp_path / "jupyter" / name.lower()) for name in
                    ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
    environ = {key: value for key, value in os.environ.items() if key != "VOLTA_REFRESH_README_PLOTS"}
    env = notebook_environment(environ) | jupyter_dirs | {
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "VOLTA_NOTEBOOK_N": str(N), "VOLTA_NOTEBOOK_OUT": str(tmp_path / "out")}
    server = LabServer(tmp_path / "lab", free_port(), secrets.token_hex(16), env)
    try:
        server.start()  # a failed start raises with the log's tail
        yield server
    finally:
        if server.is_running():
            server.stop()  # SIGTERM, then SIGKILL after Timeouts.PROCESS_STOP (and a ProcessError saying so)


def rest(server: LabServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    response = requests.request(method, f"{server.url}{path}", headers=server.auth_header(), timeout=30, **kwargs)
    assert response.ok, f"{method} {path}: {response.status_code} {response.text[:500]}"
    return response


class KernelChannel:
    """The kernel's WebSocket channel as JupyterLab's page uses it (jupyter_server's default JSON protocol)."""

    def __init__(self, server: LabServer, kernel_id: str) -> None:
        self.session = Session(username="test")
        url = f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels?session_id={self.session.session}"
        self.socket = websocket.create_connection(url, header=server.auth_header(), timeout=CELL_TIMEOUT_S)

    def execute(self, code: str) -> CellResult:
        request = self.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                       "user_expressions": {}, "allow_stdin": False,
                                                       "stop_on_error": True})
        self.socket.send(json.dumps(request | {"channel": "shell", "buffers": []}, default=json_default))
        msg_id, result = request["header"]["msg_id"], CellResult()
        replied = idle = False
        while not (replied and idle):  # the reply on shell, and every output before the kernel's idle on iopub
            message = json.loads(self.socket.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream" and content["name"] == "stdout":
                result.stdout += content["text"]
            elif kind == "error":
                result.errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind in ("display_data", "execute_result"):
                result.mime_types += list(content["data"])
            replied |= kind == "execute_reply"
            idle |= kind == "status" and content["execution_state"] == "idle"
        return result

    def close(self) -> None:
        self.socket.close()


def test_kernel_registration_is_idempotent(tmp_path: Path) -> None:
    first = register_kernel(tmp_path)
    second = register_kernel(tmp_path)
    assert first == second == tmp_path / "share" / "jupyter" / "kernels" / KERNEL_NAME
    spec = json.loads((second / "kernel.json").read_text())
    assert spec["display_name"] == KERNEL_DISPLAY_NAME and spec["argv"][0] == sys.executable  # this venv's Python


def test_research_run_knows_which_notebooks_need_the_network() -> None:
    """`make research` brings the network up for these two only: the ones test_notebooks.py runs on it."""
    online = {path.name for path in NOTEBOOKS_DIR.glob("0[1-6]_*.ipynb") if needs_network(path)}
    assert online == {"01_payment_latency.ipynb", "03_double_pay_replay.ipynb"}


def test_notebook_runs_through_jupyterlab(lab: LabServer, tmp_path: Path) -> None:
    with log_shown_on_failure(lab):
        specs = rest(lab, "GET", "/api/kernelspecs").json()
        assert specs["default"] == KERNEL_NAME
        assert specs["kernelspecs"][KERNEL_NAME]["spec"]["argv"][0] == sys.executable
        session = rest(lab, "POST", "/api/sessions", json={"path": NOTEBOOK, "name": NOTEBOOK, "type": "notebook",
                                                            "kernel": {"name": KERNEL_NAME}}).json()
        channel = KernelChannel(lab, session["kernel"]["id"])
        try:
            where = channel.execute("import os, sys; print(sys.executable); print(os.getcwd()); "
                                    "print(os.environ['VOLTA_REGTEST_STATE'])")
            notebook = nbformat.read(NOTEBOOKS_DIR / NOTEBOOK, as_version=4)
            cells = [channel.execute(cell.source) for cell in notebook.cells if cell.cell_type == "code"]
        finally:
            channel.close()
            rest(lab, "DELETE", f"/api/sessions/{session['id']}")  # shuts the kernel down, as closing the tab does
        assert rest(lab, "GET", "/api/kernels").json() == []

        # The kernel runs this venv's Python in the notebook's folder and is told where the network's state is.
        state = lab.environment()["VOLTA_REGTEST_STATE"]
        assert where.stdout.split("\n")[:3] == [sys.executable, str(NOTEBOOKS_DIR), state] and Path(state).is_absolute()
        assert [error for cell in cells for error in cell.errors] == []
        assert "image/png" in {mime for cell in cells for mime in cell.mime_types}  # the page got the figure
        check_printed_figures("".join(cell.stdout for cell in cells), tmp_path / "out")


def check_printed_figures(printed: str, out: Path) -> None:
    """What the notebook printed is what its results.json (with provenance) says, for N orders per cell."""
    report = json.loads((out / "results.json").read_text())
    results, provenance = report["results"], report["provenance"]
    assert provenance["n"] == N and provenance["notebook"] == Path(NOTEBOOK).stem and len(provenance["commit"]) >= 7
    assert f"{N} simulated orders per cell" in printed
    recommended = re.search(r"recommended: quote lifetime (\d+) s, buyer's bound (\d+) bps", printed)
    assert recommended, printed
    assert (int(recommended[1]), int(recommended[2])) == (results["recommended"]["quote_lifetime_s"],
                                                          results["recommended"]["max_slippage_bps"])
    moves = re.search(r"Completion moves by ([\d.]+)% across lifetimes but at most ([\d.]+)%", printed)
    assert moves, printed
    answer = results["answer"]
    assert float(moves[1]) == pytest.approx(100 * answer["completion_range_over_lifetimes"], abs=0.05)
    assert float(moves[2]) == pytest.approx(100 * answer["largest_completion_range_over_bounds"], abs=0.05)
    assert str(out / "results.json") in printed
    for figure in results["figures"]:
        assert str(out / figure) in printed and (out / figure).stat().st_size > 10_000
