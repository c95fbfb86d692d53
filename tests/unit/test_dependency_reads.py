"""Shared, bounded reads for the GET endpoints, with a fake price source that counts its calls. The same sharing
is checked against the real devnet in tests/service/test_read_endpoints.py, counting at a proxy."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.api.dependency_reads import BoundedCalls, NoAnswer, SharedAnswer


class CountingSource:
    def __init__(self, delay_s: float = 0.0, fails: bool = False) -> None:
        self.calls = 0
        self.delay_s, self.fails = delay_s, fails
        self._lock = threading.Lock()
        self.release = threading.Event()

    def price(self) -> str:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay_s)
        if self.fails:
            raise ConnectionError("oracle unreachable")
        return "97000.00"

    def stuck(self) -> str:
        with self._lock:
            self.calls += 1
        self.release.wait(30)
        return "late"


def hammer(function: object, seconds: float, threads: int = 32) -> list[object]:
    deadline = time.monotonic() + seconds

    def loop() -> list[object]:
        results: list[object] = []
        while time.monotonic() < deadline:
            try:
                results.append(function())  # type: ignore[operator]
            except Exception as exc:
                results.append(exc)
        return results

    with ThreadPoolExecutor(threads) as pool:
        return [result for future in [pool.submit(loop) for _ in range(threads)] for result in future.result()]


def test_many_concurrent_callers_make_one_call_per_period() -> None:
    source = CountingSource(delay_s=0.05)
    shared = SharedAnswer(source.price, ttl_s=0.5, calls=BoundedCalls("rate", 1, timeout_s=5))
    started = time.monotonic()
    results = hammer(shared.get, seconds=2.0)
    periods = (time.monotonic() - started) / 0.5
    assert len(results) > 1000 and set(results) == {"97000.00"}
    assert source.calls <= periods + 1, f"{source.calls} calls in {periods:.1f} periods"


def test_a_failure_is_shared_for_the_period_too() -> None:
    source = CountingSource(fails=True)
    shared = SharedAnswer(source.price, ttl_s=0.5, calls=BoundedCalls("rate", 1, timeout_s=5))
    results = hammer(shared.get, seconds=1.0)
    assert results and all(isinstance(result, ConnectionError) for result in results)
    assert source.calls <= 3


def test_a_stuck_dependency_costs_one_thread_and_every_caller_gets_no_answer_within_the_bound() -> None:
    source = CountingSource()
    shared = SharedAnswer(source.stuck, ttl_s=0.1, calls=BoundedCalls("rate", 1, timeout_s=0.2))
    started = time.monotonic()
    results = hammer(shared.get, seconds=1.0, threads=16)
    assert all(isinstance(result, NoAnswer) for result in results)
    assert time.monotonic() - started < 1.5, "nobody waited much longer than the bound"
    assert source.calls == 1, "callers wait for the call in flight instead of starting another"
    source.release.set()


def test_bounded_calls_drop_a_queued_call_whose_caller_gave_up() -> None:
    source = CountingSource()
    calls = BoundedCalls("balance", 1, timeout_s=0.1)
    with pytest.raises(NoAnswer):
        calls.call(source.stuck)  # occupies the only thread
    with pytest.raises(NoAnswer):
        calls.call(source.stuck)  # queued behind it, then dropped
    source.release.set()
    time.sleep(0.2)
    assert source.calls == 1
