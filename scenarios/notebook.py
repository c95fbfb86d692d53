"""What the notebooks share: their size knob, where their outputs go, which network they drive, and the
provenance every output carries.

- `VOLTA_NOTEBOOK_N`: how many purchases / simulated orders (the test suite runs each notebook small);
- `VOLTA_NOTEBOOK_OUT`: the output folder (default `artifacts/notebooks/<notebook>/`, not committed): each
  PNG and a `results.json` (provenance: commit, seed, N, machine, date; and the figures the notebook printed);
- `VOLTA_REFRESH_README_PLOTS=1`: also copy the PNGs and their results to `docs/plots/` (the README's). Only
  an explicit run does that: `python -m scenarios.notebook --refresh-readme-plots notebooks/02_*.ipynb`;
- `VOLTA_REGTEST_STATE`: the `state.json` of the network to drive (default .regtest/state.json).

`python -m scenarios.notebook [--n N] [--refresh-readme-plots] NOTEBOOK...` runs notebooks top to bottom in a
fresh kernel (nbclient), as the test suite does, keeps each executed notebook (with its printed output) beside
its figures, and prints where they went.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from scenarios.provenance import Provenance, collect, png_metadata, stamp, write_results

if TYPE_CHECKING:
    from scenarios.target import StateTarget

REPO_ROOT = Path(__file__).resolve().parent.parent
README_PLOTS = REPO_ROOT / "docs" / "plots"
DEFAULT_OUT = REPO_ROOT / "artifacts" / "notebooks"
REFRESH_ENV = "VOLTA_REFRESH_README_PLOTS"


def notebook_n(default: int) -> int:
    return int(os.environ.get("VOLTA_NOTEBOOK_N") or default)


def output_dir(notebook: str) -> Path:
    path = Path(os.environ["VOLTA_NOTEBOOK_OUT"]) if os.environ.get("VOLTA_NOTEBOOK_OUT") else DEFAULT_OUT / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path


def refresh_readme_plots() -> bool:
    return os.environ.get(REFRESH_ENV, "").lower() in ("1", "true", "yes")


class Run:
    """One notebook run: its provenance, the figures it saved and the results it reports.

    `save(figure, "x.png")` stamps the provenance on the figure, writes it to the output folder (PNG metadata
    included); `write(results)` writes `results.json` there. With VOLTA_REFRESH_README_PLOTS=1 both are also
    copied to docs/plots (`x.png`, and the results as `<notebook>.json`)."""

    def __init__(self, notebook: str, seed: int | None, n: int, **extra: Any) -> None:
        self.notebook = notebook
        self.provenance: Provenance = collect(notebook, seed, n, **extra)
        self.out = output_dir(notebook)
        self.figures: list[str] = []

    def save(self, figure: Figure, name: str) -> Path:
        stamp(figure, self.provenance)
        path = self.out / name
        figure.savefig(path, dpi=110, bbox_inches="tight", metadata=png_metadata(self.provenance))
        self.figures.append(name)
        if refresh_readme_plots():
            README_PLOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_PLOTS / name)
        return path

    def write(self, results: dict[str, Any]) -> Path:
        path = write_results(self.out / "results.json", self.provenance, results | {"figures": self.figures})
        if refresh_readme_plots():
            shutil.copyfile(path, README_PLOTS / f"{self.notebook}.json")
        return path


def state_file() -> Path:
    if "VOLTA_REGTEST_STATE" in os.environ:
        return Path(os.environ["VOLTA_REGTEST_STATE"])
    from harness.state import state_path

    return state_path()


def regtest_target() -> StateTarget:
    """The running network (`python -m harness up`, or the one a test hands over)."""
    from scenarios.target import StateTarget

    return StateTarget(state_file())


def execute(path: Path, n: int | None = None, refresh: bool = False, timeout_s: int = 1800) -> Path:
    """Run one notebook in a fresh kernel with this process's environment (plus N and the refresh flag)."""
    import nbformat
    from nbclient import NotebookClient

    if n is not None:
        os.environ["VOLTA_NOTEBOOK_N"] = str(n)
    if refresh:
        os.environ[REFRESH_ENV] = "1"
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    out = output_dir(path.stem)
    nbformat.write(notebook, out / f"{path.stem}.executed.ipynb")  # with its outputs, beside the figures
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenarios.notebook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--n", type=int, help="VOLTA_NOTEBOOK_N (default: each notebook's own full N)")
    parser.add_argument("--refresh-readme-plots", action="store_true",
                        help="also copy the PNGs and results.json to docs/plots (the README's)")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: outputs in {execute(path, args.n, args.refresh_readme_plots)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
