"""Where a figure came from: the commit (and whether the tree had uncommitted changes), the seed, N, the machine
and the date. Every notebook writes this beside its PNG (`results.json`), stamps it on the figure's footer and
into the PNG's metadata, so a plot found later says how to make it again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIRED_FIELDS = ("commit", "dirty", "seed", "n", "machine", "date_utc", "notebook")


@dataclass(frozen=True)
class Provenance:
    notebook: str
    seed: int | None  # None: no random draws (a live network run)
    n: int
    commit: str
    dirty: bool  # uncommitted changes in the work tree: the commit alone does not reproduce the figure
    machine: str  # hostname, OS, CPU count, Python
    date_utc: str
    extra: dict[str, Any] = field(default_factory=dict)  # the notebook's own knobs (calibration file, regime…)

    def footer(self) -> str:
        dirty = "+uncommitted" if self.dirty else ""
        seed = "none" if self.seed is None else self.seed
        return (f"{self.notebook} · commit {self.commit[:10]}{dirty} · seed {seed} · N {self.n:,} · "
                f"{self.machine} · {self.date_utc}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def git_commit(repo: Path = REPO_ROOT) -> tuple[str, bool]:
    """HEAD's hash and whether tracked files differ from it; ("unknown", True) outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "scenarios",
                                 "notebooks"], cwd=repo, capture_output=True, text=True, check=True,
                                timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", True
    return commit, bool(status.strip())


def modified_files(repo: Path = REPO_ROOT) -> list[str]:
    """Tracked files changed in the work tree: a measurement of a service run from it includes them."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                            capture_output=True, text=True, check=False).stdout
    return [line[3:] for line in status.splitlines() if line.strip()]


def machine() -> str:
    return (f"{platform.node() or 'unknown-host'} {platform.system()} {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}")


def collect(notebook: str, seed: int | None, n: int, **extra: Any) -> Provenance:
    commit, dirty = git_commit()
    return Provenance(notebook=notebook, seed=seed, n=n, commit=commit, dirty=dirty, machine=machine(),
                      date_utc=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), extra=dict(extra))


def of_measurement(began_unix: float, n: int, seed: int | None, command: str) -> dict[str, Any]:
    """The provenance of a live network measurement (a calibration file, the jam probe): besides the commit, the
    files changed but not committed, since the service measured runs from the work tree."""
    commit, dirty = git_commit()
    return {"commit": commit, "dirty": dirty, "machine": machine(), "modified_files": modified_files(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(began_unix)), "n": n, "seed": seed,
            "command": command}


def stamp(figure: Figure, provenance: Provenance) -> None:
    """The provenance as a small grey footer under the figure."""
    figure.text(0.005, 0.002, provenance.footer(), fontsize=6.5, color="0.4", ha="left", va="bottom")


def png_metadata(provenance: Provenance) -> dict[str, str]:
    """PNG text chunks (readable with PIL's `Image.open(path).text`)."""
    return {"Software": "volta-lightning scenarios", "Source": provenance.footer(),
            "Comment": json.dumps(provenance.as_dict(), default=str)}


def write_results(path: Path, provenance: Provenance, results: dict[str, Any]) -> Path:
    """`results.json`: the provenance and the figures the notebook printed, as plain JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"provenance": provenance.as_dict(), "results": results}, indent=2,
                               default=_plain) + "\n")
    return path


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
