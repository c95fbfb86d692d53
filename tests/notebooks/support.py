"""Running a notebook as the tests do: in a fresh kernel, at a small N, its outputs in a folder of the test's own,
its results.json read back after its provenance and figures are checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from scenarios.provenance import REQUIRED_FIELDS

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
README_PLOTS = NOTEBOOKS.parent / "docs" / "plots"
CELL_TIMEOUT_S = 900  # other engineers' suites share these two cores


def execute(name: str, n: int, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run the notebook; return its results.json after checking its provenance."""
    monkeypatch.setenv("VOLTA_NOTEBOOK_N", str(n))
    monkeypatch.setenv("VOLTA_NOTEBOOK_OUT", str(out))
    monkeypatch.delenv("VOLTA_REFRESH_README_PLOTS", raising=False)  # tests never touch the README's plots
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    report = json.loads((out / "results.json").read_text())
    provenance = report["provenance"]
    assert set(REQUIRED_FIELDS) <= set(provenance) and provenance["n"] == n
    assert provenance["notebook"] == Path(name).stem and len(provenance["commit"]) >= 7
    for figure in report["results"]["figures"]:
        assert (out / figure).stat().st_size > 10_000
    return report["results"]
