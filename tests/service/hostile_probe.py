"""Sending hostile requests to the service process and judging what happened, as a fuzzing batch needs it: every
failure is kept (the process restarted if a request killed it), so one run shows every kind of bug, each with
the smallest request that still shows it.

A failure is a 5xx, a process that died, no HTTP answer at all, a 4xx that is not our JSON error
{"error", "message", "hint"}, or a body over the size bound that was not refused with 413 (when the server could
read its length).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from harness.process import describe_exit
from harness.service_process import VoltaService
from tests.service.hostile import BODY_BOUND, Answer, HostileRequest, send

ERROR_KEYS = {"error", "message", "hint"}
# The last line of a Python traceback, or the interpreter's own last words.
EXCEPTION_LINE = re.compile(r"^(\w+\.)*\w*(Error|Exception|Exit|Interrupt)\b.*$|^Fatal Python error.*$", re.M)
EXIT_GRACE_S = 3.0  # a process that dropped the connection is given this long to be seen dead
MINIMIZING_REQUESTS = 16  # per kind of failure


@dataclass(frozen=True)
class Finding:
    outcome: str  # "500", "process died (killed by SIGSEGV)", "no answer", "400 not our JSON error", …
    cause: str  # the exception the service logged, or what came back
    request: HostileRequest

    @property
    def kind(self) -> tuple[str, str]:
        return self.outcome, self.cause


def is_our_error(answer: Answer) -> bool:
    try:
        body = answer.json()
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == ERROR_KEYS and all(isinstance(v, str) and v for v in body.values())


class Prober:
    """Sends hostile requests to one service process and judges each answer; `restart` brings the process back
    when a request killed it. Counts what it sent (`sent`) and the statuses it got (`statuses`)."""

    def __init__(self, http: httpx.Client, service: VoltaService, restart: Callable[[], None]) -> None:
        self.http = http
        self.service = service
        self.restart = restart
        self.sent = 0
        self.statuses: Counter[str] = Counter()

    def probe(self, request: HostileRequest) -> Finding | None:
        """Send one request; a Finding if the answer or the process says something went wrong."""
        log_offset = self.service.log_path.stat().st_size
        self.sent += 1
        try:
            answer: Answer | None = send(self.http, request)
            failure = ""
        except (httpx.TransportError, OSError) as exc:
            answer, failure = None, f"{type(exc).__name__}: {exc}"
            self._wait_for_exit()
        self.statuses[str(answer.status) if answer else "none"] += 1
        if not self.service.is_running():
            code = self.service.exit_code
            died = f"process died ({describe_exit(code) if code is not None else 'exit unknown'})"
            self.restart()
            return Finding(died, self._logged_cause(log_offset) or "", request)
        if answer is None:
            return Finding("no answer", failure, request)
        if answer.status >= 500:
            return Finding(str(answer.status), self._logged_cause(log_offset) or answer.body[:200].decode("latin-1"),
                           request)
        if 400 <= answer.status < 500 and not is_our_error(answer):
            return Finding(f"{answer.status} not our JSON error", f"{answer.content_type}: {answer.body[:120]!r}",
                           request)
        if len(request.body) > BODY_BOUND and request.length_is_readable and answer.status != 413:
            return Finding(f"a body over {BODY_BOUND} bytes not refused with 413", f"answered {answer.status}",
                           request)
        return None

    def minimal(self, finding: Finding) -> Finding:
        """Drop the request's parts one at a time (a header, the body, a query parameter) for as long as the same
        kind of failure comes back, within MINIMIZING_REQUESTS requests."""
        budget = MINIMIZING_REQUESTS
        while budget > 0:
            for smaller in finding.request.smaller():
                budget -= 1
                again = self.probe(smaller)
                if again is not None and again.kind == finding.kind:
                    finding = again
                    break
                if budget <= 0:
                    break
            else:
                break
        return finding

    def _wait_for_exit(self) -> None:
        deadline = time.monotonic() + EXIT_GRACE_S
        while self.service.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _logged_cause(self, offset: int) -> str | None:
        """The last exception line the service logged since `offset`."""
        with self.service.log_path.open("rb") as log:
            log.seek(offset)
            matches = list(EXCEPTION_LINE.finditer(log.read().decode("utf-8", "replace")))
        return matches[-1].group(0)[:300] if matches else None


def summarize(findings: list[Finding], minimal: Callable[[Finding], Finding], base_url: str) -> str:
    """One paragraph per kind of failure: how often, the cause, and the smallest request that shows it (`minimal`
    applied to the kind's shortest example)."""
    kinds: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        kinds.setdefault(finding.kind, []).append(finding)
    lines = [f"{len(findings)} hostile requests failed, {len(kinds)} kinds:"]
    for (outcome, cause), same in kinds.items():
        shortest = minimal(min(same, key=lambda finding: len(finding.request.reproduction(base_url))))
        lines.append(f"- {outcome} x{len(same)}: {cause}\n    minimal: {' '.join(shortest.request.labels)}"
                     f"\n    {shortest.request.reproduction(base_url)}")
    return "\n".join(lines)
