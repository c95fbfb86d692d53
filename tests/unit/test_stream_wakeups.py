"""Live streams wake for their own order only, and the moment their client goes away (one watcher thread for
all of them), so thousands of open checkout pages neither read the database on every change nor keep a slot
after the page is closed."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack
from types import SimpleNamespace

from service.events import ClientWatch, OrderChanges


def test_a_change_rings_the_streams_of_its_order_only() -> None:
    changes = OrderChanges()
    with changes.follow("ord_a") as a, changes.follow("ord_a") as a2, changes.follow("ord_b") as b:
        changes.notify(SimpleNamespace(id="ord_a"))
        assert a.wait(0) and a2.wait(0)
        assert not b.wait(0)
        changes.notify(object())  # a change whose order is not known rings every stream
        assert b.wait(0)
    assert changes.followed_count() == 0


def test_a_cleared_alarm_rings_again_for_a_change_after_the_clear() -> None:
    changes = OrderChanges()
    with changes.follow("ord_a") as follower:
        changes.notify(SimpleNamespace(id="ord_a"))
        follower.clear()
        assert not follower.wait(0)
        changes.notify(SimpleNamespace(id="ord_a"))
        assert follower.wait(0)


def test_a_client_going_away_rings_its_stream_at_once_and_others_not() -> None:
    watch, changes = ClientWatch(), OrderChanges()
    pairs = [socket.socketpair() for _ in range(50)]
    try:
        with ExitStack() as streams:
            followers = []
            for index, (server_side, _client_side) in enumerate(pairs):
                follower = streams.enter_context(changes.follow(f"ord_{index}"))
                streams.enter_context(watch.watching(server_side, follower))
                followers.append(follower)
            time.sleep(0.2)
            closed_at = time.monotonic()
            pairs[7][1].close()  # the browser of stream 7 goes away
            assert followers[7].wait(2), "the stream whose client closed was not woken"
            assert time.monotonic() - closed_at < 1.0
            assert followers[7].client_gone
            assert not any(follower.wait(0) for index, follower in enumerate(followers) if index != 7)
            assert not any(follower.client_gone for index, follower in enumerate(followers) if index != 7)
    finally:
        for server_side, client_side in pairs:
            server_side.close()
            client_side.close()


def test_a_stream_without_a_known_socket_is_not_watched() -> None:
    changes = OrderChanges()
    with changes.follow("ord_a") as follower, ClientWatch().watching(None, follower):
        assert not follower.wait(0.1)
