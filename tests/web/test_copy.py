"""The words the pages use for order states and refund reasons cover every state and reason the service has
(no browser, no network)."""

from __future__ import annotations

from service import web
from service.domain.states import OrderStatus, RefundReason


def test_every_status_has_its_words() -> None:
    assert set(web.STATUS_COPY) == {status.value for status in OrderStatus}
    for words in web.STATUS_COPY.values():
        assert words["badge"] and words["headline"] and words["detail"]
    assert set(web.FINAL) == {status.value for status in OrderStatus if status.is_final}
    assert set(web.STEP_OF_STATUS) == {status.value for status in OrderStatus if not status.is_final} | {"completed"}


def test_every_refund_reason_is_said_in_plain_words() -> None:
    assert set(web.REFUND_REASONS) - {""} == {reason.value for reason in RefundReason}
    assert all("_" not in sentence for sentence in web.REFUND_REASONS.values())


def test_amounts_as_people_read_them() -> None:
    assert web.sats(25_773_190) == "25,773.19"
    assert web.sats(25_773_000) == "25,773"
    assert web.sats(1) == "0.001"
    assert web.vusd("1000.5") == "1,000.50"
    assert web.vusd("25.00") == "25.00"
