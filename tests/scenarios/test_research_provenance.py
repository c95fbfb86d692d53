"""Every notebook output says how it was made, and only an explicit request touches the README's plots."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from PIL import Image

from scenarios import notebook
from scenarios.provenance import REQUIRED_FIELDS, collect, git_commit


def test_provenance_names_commit_seed_n_machine_and_date() -> None:
    provenance = collect("test_notebook", seed=7, n=1234, regime="typical")
    record = provenance.as_dict()
    assert set(REQUIRED_FIELDS) <= set(record)
    commit, _ = git_commit()
    assert record["commit"] == commit and len(commit) == 40
    assert record["seed"] == 7 and record["n"] == 1234 and record["extra"] == {"regime": "typical"}
    assert "CPUs" in record["machine"] and record["date_utc"].endswith("UTC")
    assert "seed 7" in provenance.footer() and "N 1,234" in provenance.footer()


def _figure() -> plt.Figure:
    figure, axis = plt.subplots()
    axis.plot([0, 1], [0, 1])
    return figure


def test_a_run_writes_png_and_results_to_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "readme_plots"
    monkeypatch.setattr(notebook, "README_PLOTS", readme)
    monkeypatch.setenv("VOLTA_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.delenv("VOLTA_REFRESH_README_PLOTS", raising=False)
    run = notebook.Run("nb_test", seed=3, n=10)
    png = run.save(_figure(), "figure.png")
    report = json.loads(run.write({"answer": 42}).read_text())
    assert report["results"] == {"answer": 42, "figures": ["figure.png"]} and report["provenance"]["seed"] == 3
    stamped = json.loads(Image.open(png).text["Comment"])
    assert stamped["commit"] == report["provenance"]["commit"] and stamped["n"] == 10
    assert not readme.exists()  # nothing written where the README looks


def test_only_the_refresh_flag_updates_the_readme_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "readme_plots"
    monkeypatch.setattr(notebook, "README_PLOTS", readme)
    monkeypatch.setenv("VOLTA_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("VOLTA_REFRESH_README_PLOTS", "1")
    run = notebook.Run("nb_test", seed=None, n=1)
    run.save(_figure(), "figure.png")
    run.write({})
    assert (readme / "figure.png").exists()
    assert json.loads((readme / "nb_test.json").read_text())["provenance"]["seed"] is None
