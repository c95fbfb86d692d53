"""The stream cap per client, and in-process wake-ups of live streams."""

from __future__ import annotations

import threading
import time

from service.events import OrderChanges, StreamSlots


def test_a_client_gets_at_most_its_share_of_streams_and_a_closed_one_frees_its_slot() -> None:
    slots = StreamSlots(per_ip=2)
    assert slots.take("10.0.0.1") and slots.take("10.0.0.1")
    assert not slots.take("10.0.0.1")
    assert slots.take("10.0.0.2")  # another client is not affected
    slots.give_back("10.0.0.1")
    assert slots.take("10.0.0.1")


def test_a_waiting_stream_wakes_on_a_change_not_on_its_poll() -> None:
    changes, woke = OrderChanges(), threading.Event()

    def waiter() -> None:
        changes.wait(changes.version, timeout=30)
        woke.set()

    threading.Thread(target=waiter, daemon=True).start()
    time.sleep(0.1)
    changes.notify(object())
    assert woke.wait(2)
