"""Order admissions on PostgreSQL hold two connections each (the per-address advisory lock's and the session's).
Many at once (four times the pool) all get through, and no more than MAX_CONCURRENT_ADMISSIONS run together, so
they can never hold every connection of the pool while each waits for a second. (With real threads this run did
not starve even without the bound; under gevent nothing else limits how many run together.)"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from service.storage.database import POOL_OVERFLOW, POOL_SIZE, make_engine, make_session_factory, migrate
from service.storage.orders import MAX_CONCURRENT_ADMISSIONS, OrderRepository

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_more_admissions_at_once_than_the_pool_has_pairs_of_connections_all_get_through(postgres_url: str) -> None:
    assert 2 * MAX_CONCURRENT_ADMISSIONS < POOL_SIZE + POOL_OVERFLOW
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    repository = OrderRepository(make_session_factory(engine), clock=lambda: NOW)
    inside, most_inside, lock = 0, 0, threading.Lock()

    def admit(index: int) -> None:
        nonlocal inside, most_inside
        with repository.admitting(f"0x{uuid.uuid4().hex}{index}"):
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
            repository.vusd_committed_since("0x1", NOW - timedelta(days=1))  # the admission's second connection
            time.sleep(0.2)
            with lock:
                inside -= 1

    count = 4 * (POOL_SIZE + POOL_OVERFLOW)  # enough to keep every one of the 64 address locks busy
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(admit, range(count)))  # raises the pool's TimeoutError if admissions starve each other
    finally:
        engine.dispose()
    assert most_inside <= MAX_CONCURRENT_ADMISSIONS
    assert time.monotonic() - started < 25, "admissions waited on the pool"
