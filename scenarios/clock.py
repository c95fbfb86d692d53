"""The scenario clock: seconds since the scenario began, with the run's stop signal and its deadline."""

from __future__ import annotations

import threading
import time


class ScenarioClock:
    """One clock for a run's orders, payments, price moves and faults; `start` sets its zero."""

    def __init__(self) -> None:
        self.t0 = 0.0  # time.time() at the scenario's zero: every `at_s` counts from here
        self.deadline = 0.0  # time.monotonic() after which the run is out of time
        self.stop = threading.Event()

    def start(self, timeout_s: float) -> None:
        self.t0 = time.time()
        self.deadline = time.monotonic() + timeout_s

    def now(self) -> float:
        return time.time() - self.t0

    def ending(self) -> bool:
        """True once the run is stopping or out of time."""
        return self.stop.is_set() or time.monotonic() > self.deadline

    def sleep_until(self, at_s: float) -> bool:
        """Sleep until `at_s` on the scenario clock; False if the run is stopping or out of time."""
        while (left_s := at_s - self.now()) > 0:  # read once: time passes between a check and the sleep
            if self.ending():
                return False
            time.sleep(min(0.1, left_s))
        return True
