"""The life cycle every harness process shares: start, stop politely, kill, show its log."""

from __future__ import annotations

import ctypes
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness.util import Timeouts, tail, wait_until

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If the harness itself is SIGKILLed, the kernel takes its children down too: no btcd or lnd may
    # outlive the network that started it. The kernel ties this to the *thread* that started the child,
    # so start and restart processes from a thread that lives as long as the network (the main thread).
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ProcessError(RuntimeError):
    pass


class ManagedProcess:
    """One external program with its own directory and log, like Bitcoin Core's TestNode."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "process.log"
        self._popen: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """Environment for the process; None inherits ours."""
        return None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        if self.is_running():
            raise ProcessError(f"[{self.name}] already running")
        log = self.log_path.open("ab")
        try:
            self._popen = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the harness, which then stops us in order
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def wait_answering(
        self,
        probe: Callable[[], bool],
        what: str,
        transient: tuple[type[BaseException], ...] = (),
        timeout: float = Timeouts.PROCESS_START,
    ) -> None:
        """Wait until `probe` says the process answers; fail at once, with its log, if it exits meanwhile."""

        def alive_and_answering() -> bool:
            self.ensure_alive()
            return probe()

        wait_until(alive_and_answering, timeout=timeout, what=f"[{self.name}] {what}", transient=transient,
                   interval=0.2)

    def ensure_alive(self) -> None:
        """Raise with the log's tail if the process has exited."""
        if self._popen is None:
            raise ProcessError(f"[{self.name}] was never started")
        code = self._popen.poll()
        if code is not None:
            raise ProcessError(f"[{self.name}] exited with code {code}; log tail:\n{self.log_tail()}")

    def stop(self, timeout: float = Timeouts.PROCESS_STOP) -> None:
        """SIGTERM, wait, then SIGKILL: never hangs, never leaves the process behind."""
        if not self.is_running():
            return
        assert self._popen is not None
        self._popen.terminate()
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self._popen is None or self._popen.poll() is not None:
            return
        self._popen.kill()
        self._popen.wait(timeout=Timeouts.PROCESS_STOP)

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} pid={self.pid}>"
