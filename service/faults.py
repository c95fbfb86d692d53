"""Test-only fault injection, built by the composition root only when configured (`fault_pause_after`): the
domain calls its checkpoints (`service.domain.settlement.Checkpoint`) and never knows a pause exists."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from service.domain.settlement import Checkpoint

log = logging.getLogger("volta.faults")


def pause_checkpoint(spec: str) -> Callable[[str], None]:
    """`VOLTA_FAULT_PAUSE_AFTER=mint_signed:30`: sleep at that checkpoint so a test can SIGKILL the process
    exactly there. The log line tells the test the pause was reached."""
    point, _, seconds = spec.partition(":")
    if point not in set(Checkpoint):
        raise ValueError(f"unknown checkpoint {point!r}; known: {', '.join(Checkpoint)}")

    def pause(reached: str) -> None:
        if reached == point:
            log.warning("fault injection: pausing %ss at %s", seconds or 30, point)
            time.sleep(float(seconds or 30))

    return pause
