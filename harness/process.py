"""The life cycle every harness process shares: start (spawn, then wait until ready), stop politely and check
how it ended, kill, show its log."""

from __future__ import annotations

import ctypes
import pwd
import signal
import subprocess
from collections.abc import Callable, Collection
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


def describe_exit(code: int) -> str:
    """`Popen.returncode` in words: subprocess reports death by a signal as minus the signal's number."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ManagedProcess:
    """One external program with its own directory and log, like Bitcoin Core's TestNode."""

    # The signal `stop` asks the program to end with: SIGTERM, unless the program's clean stop is another one
    # (PostgreSQL's SIGTERM waits for every client to hang up; its SIGINT disconnects them and stops).
    STOP_SIGNAL: signal.Signals = signal.SIGTERM
    # How the program ends on our STOP_SIGNAL when all is well (Bitcoin Core's `expected_ret_code`): it exits 0,
    # or, without a handler of its own, dies by that very signal. Subclasses narrow this to what was measured.
    CLEAN_STOP_EXIT_CODES: frozenset[int] = frozenset({0, -signal.SIGTERM})

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "process.log"
        self._popen: subprocess.Popen[bytes] | None = None
        self._killed = False  # ended by kill(): its exit code says nothing about the program
        self._exit_checked = False  # stop() reports an exit once, not again on a second stop()

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """Environment for the process; None inherits ours."""
        return None

    def os_user(self) -> pwd.struct_passwd | None:
        """The account the program runs as; None runs it as we are (PostgreSQL refuses to run as root)."""
        return None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def spawn(self) -> None:
        """Launch the program and return at once; `start` is this plus `wait_ready`. Use it alone only to
        launch several processes before waiting on any (the network's lnd nodes)."""
        if self.is_running():
            raise ProcessError(f"[{self.name}] already running")
        self._killed = False
        self._exit_checked = False
        account = self.os_user()
        log = self.log_path.open("ab")  # opened by us: the log stays ours whoever the program runs as
        try:
            self._popen = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the harness, which then stops us in order
                # The parent-death signal is set after the switch of account (which would clear it): it holds.
                preexec_fn=_die_with_parent,
                user=None if account is None else account.pw_uid,
                group=None if account is None else account.pw_gid,
                extra_groups=None if account is None else [],
            )
        finally:
            log.close()

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        """Wait until the process answers its RPC and can do its job; each kind of process says how."""
        raise NotImplementedError

    def start(self) -> None:
        """Spawn and wait until ready, for every kind of process: when `start` returns, the process answers."""
        self.spawn()
        self.wait_ready()

    def restart(self) -> None:
        """Stop politely (checking the exit code), then start on the same directory and ports."""
        self.stop()
        self.start()

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
            raise ProcessError(f"[{self.name}] exited with {describe_exit(code)}; log tail:\n{self.log_tail()}")

    @property
    def exit_code(self) -> int | None:
        """How the last run ended (`Popen.returncode`: negative for a signal); None while running or never run."""
        return self._popen.poll() if self._popen else None

    def stop(self, timeout: float = Timeouts.PROCESS_STOP, expected_exit_codes: Collection[int] | None = None) -> None:
        """STOP_SIGNAL (SIGTERM for most), wait, then SIGKILL: never hangs, never leaves the process behind.

        Then the exit code is checked, as Bitcoin Core's `stop_node` asserts the return code: an exit outside
        `expected_exit_codes` (by default the class's CLEAN_STOP_EXIT_CODES), a process that had already died
        on its own, or one that had to be killed raises ProcessError with the log's tail. A run ended by
        `kill()` is not checked: we chose that ending.
        """
        if self._popen is None or self._killed or self._exit_checked:
            return
        already_exited = self._popen.poll() is not None
        if not already_exited:
            self._popen.send_signal(self.STOP_SIGNAL)
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait(timeout=Timeouts.PROCESS_STOP)
                self._exit_checked = True
                raise ProcessError(f"[{self.name}] did not stop within {timeout:.0f}s of {self.STOP_SIGNAL.name}, so "
                                   f"it was killed; log tail:\n{self.log_tail()}") from None
        self._check_exit(already_exited, expected_exit_codes)

    def _check_exit(self, already_exited: bool, expected_exit_codes: Collection[int] | None) -> None:
        assert self._popen is not None and self._popen.returncode is not None
        self._exit_checked = True
        code = self._popen.returncode
        expected = self.CLEAN_STOP_EXIT_CODES if expected_exit_codes is None else expected_exit_codes
        if code in expected:
            return
        when = "before it was asked to stop" if already_exited else f"on {self.STOP_SIGNAL.name}"
        wanted = " or ".join(describe_exit(ok) for ok in sorted(expected, reverse=True))
        raise ProcessError(f"[{self.name}] ended {when} with {describe_exit(code)} (a clean stop gives {wanted}); "
                           f"log tail:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, for tests that crash a process on purpose; its exit code is not checked."""
        if self._popen is None or self._popen.poll() is not None:
            return
        self._killed = True
        self._popen.kill()
        self._popen.wait(timeout=Timeouts.PROCESS_STOP)

    def discard(self) -> None:
        """Remove whatever the process keeps outside its directory, once it has stopped for good (the network
        calls it at teardown, whether the run directory is kept or not: what is kept is what is in it)."""

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} pid={self.pid}>"
