"""The committed Sierra/CASM artifacts are exactly what the Cairo sources compile to."""

import subprocess
import sys
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "harness" / "contracts" / "build.py"


def test_committed_artifacts_match_the_sources() -> None:
    # Installs the two compilers into the tools cache on first use (about 10 minutes), then reuses them.
    result = subprocess.run([sys.executable, str(BUILD_SCRIPT), "--check"], capture_output=True, text=True,
                            timeout=3600)
    assert result.returncode == 0, result.stdout + result.stderr
