"""Order changes cross processes on a real Redis: a change told in one process wakes the live streams of
another at once, well inside the 5 s poll that is left only as a safety net."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.redis import Redis
from service.events import POLL_WITH_REDIS_S, RedisOrderChanges


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = Redis(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


def test_a_change_in_one_process_wakes_the_streams_of_another(redis_server: Redis) -> None:
    worker_side, api_side = RedisOrderChanges(redis_server.url), RedisOrderChanges(redis_server.url)
    try:
        time.sleep(0.5)  # both subscribed
        seen, woke_after = api_side.version, []

        def stream() -> None:
            started = time.monotonic()
            api_side.wait(seen, timeout=POLL_WITH_REDIS_S * 2)
            woke_after.append(time.monotonic() - started)

        listener = threading.Thread(target=stream)
        listener.start()
        time.sleep(0.2)
        worker_side.notify(SimpleNamespace(id="ord_x"))
        listener.join()
        assert api_side.version != seen and woke_after[0] < 1.0, woke_after
    finally:
        worker_side.close()
        api_side.close()


def test_a_writer_is_not_failed_by_redis_going_away(tmp_path: Path) -> None:
    """A transition has committed before it is told: Redis gone must not turn it into an error."""
    server = Redis(tmp_path)
    server.start()
    changes = RedisOrderChanges(server.url)
    try:
        server.kill()
        changes.notify(SimpleNamespace(id="ord_y"))  # logs a warning; this process's streams still wake
        assert changes.version == 1
    finally:
        changes.close()
