"""Idempotency keys for order creation: the same key and body give the same order, a different body
with the same key is a conflict, and a failed attempt frees its key for a retry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.storage.models import IdempotencyKeyRow


class IdempotencyConflict(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def request_digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class IdempotencyStore:
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]

    def claim(self, key: str, digest: str) -> str | None:
        """Reserve the key for this body; return the order id if an earlier request already made one."""
        try:
            with self.sessions() as session, session.begin():
                session.add(IdempotencyKeyRow(key=key, request_digest=digest, created_at=self.clock()))
            return None
        except IntegrityError:
            pass
        with self.sessions() as session:
            existing = session.get(IdempotencyKeyRow, key)
        if existing is None:  # released by a failed attempt a moment ago
            return self.claim(key, digest)
        if existing.request_digest != digest:
            raise IdempotencyConflict("This Idempotency-Key was used with a different request body.")
        if existing.order_id is None:
            raise IdempotencyConflict("A request with this Idempotency-Key is still being processed.")
        return existing.order_id

    def complete(self, key: str, order_id: str) -> None:
        with self.sessions() as session, session.begin():
            row = session.get(IdempotencyKeyRow, key)
            if row is not None:
                row.order_id = order_id

    def release(self, key: str) -> None:
        with self.sessions() as session, session.begin():
            row = session.get(IdempotencyKeyRow, key)
            if row is not None and row.order_id is None:
                session.delete(row)
