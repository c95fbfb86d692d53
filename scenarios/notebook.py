"""What the notebooks share: their size knob, where plots go, which network they drive.

- `VOLTA_NOTEBOOK_N`: how many purchases / simulated orders (the test suite runs each notebook small);
- `VOLTA_PLOTS_DIR`: where PNGs go (default docs/plots, the ones the README shows);
- `VOLTA_REGTEST_STATE`: the `state.json` of the network to drive (default .regtest/state.json).
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from scenarios.target import StateTarget

REPO_ROOT = Path(__file__).resolve().parent.parent


def notebook_n(default: int) -> int:
    return int(os.environ.get("VOLTA_NOTEBOOK_N") or default)


def plots_dir() -> Path:
    path = Path(os.environ.get("VOLTA_PLOTS_DIR", REPO_ROOT / "docs" / "plots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(figure: Figure, name: str) -> Path:
    path = plots_dir() / name
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def state_file() -> Path:
    if "VOLTA_REGTEST_STATE" in os.environ:
        return Path(os.environ["VOLTA_REGTEST_STATE"])
    from harness.state import state_path

    return state_path()


def regtest_target() -> StateTarget:
    """The running network (`python -m harness up`, or the one a test hands over)."""
    return StateTarget(state_file())
