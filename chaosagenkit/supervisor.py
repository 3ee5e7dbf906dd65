"""The one supervisor of chaosagenkit's child processes: ``chaosagenkit serve``, ``proxy`` and ``llm-proxy``.

Both halves of the contract between a chaos run (the parent) and a daemon
it starts (the child) are stated here, once, and both children keep it the
same way on every path.

The parent (``start``, ``stop``, ``kill``):

- runs ``python -m chaosagenkit COMMAND ARGS --exit-with-parent``. The
  token travels in ``$CHAOSAGENKIT_TOKEN`` (``credentials.TOKEN_ENV``),
  never in argv, which ``ps`` shows to every user; the parent's pid in
  ``$CHAOSAGENKIT_PARENT_PID``.
- ``start`` returns once the child printed its ready line: the first line on
  its stdout that is a JSON object with ``"event": "ready"`` (earlier lines
  are noise: an agent may print while it is imported). It must carry the
  command's fields (``READY_FIELDS``), or it is a bad ready line.
- A bad ready line, the child exiting, or no ready line within the timeout
  is a ``ProcessStartError`` naming the reason and the end of the child's
  stderr; a Ctrl-C while waiting is re-raised as the ``KeyboardInterrupt``
  it is. Whatever the reason, the child is stopped and reaped first.
- The child's stderr is read by a thread into a bounded tail (and logged at
  DEBUG): never a pipe nobody drains, never a file that grows without bound.
- ``stop`` = SIGTERM, wait, then SIGKILL; ``kill`` = SIGKILL. Both reap.

The child (``ParentWatch``, ``announce_ready``, ``raise_open_files_limit``):

- reads its parent's pid FIRST, before anything slow (importing agenkit
  takes a second), and with ``--exit-with-parent`` exits at once (status 0,
  no ready line) when that parent is already gone. The variable is removed
  from its environment, so an agent's own children never inherit it.
- a watchdog THREAD, not an asyncio task, notices the parent's death even
  while the event loop is blocked: it runs the orphan clean-ups, asks the
  daemon for a clean stop, and ``os._exit``s if it still runs a grace
  period later.
- prints its ready line, then points stdout at stderr, so a parent that
  stopped reading never blocks it.
- raises its soft open-file limit to the hard limit (logged once).
- bad arguments: one line on stderr (``chaosagenkit COMMAND: error: ...``),
  status 2; an address it cannot bind: one line, status 1 (``fail``).

Logging convention: code that runs inside the chaos process (activities, the
control, the parent half here) logs to ``logging.getLogger("chaostoolkit")``,
the logger chaoslib itself uses, so ``chaos run`` shows it in its log; a
daemon logs to its own ``chaosagenkit.<command>`` logger on its stderr,
which the parent keeps (above).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import resource
import selectors
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from chaosagenkit.credentials import TOKEN_ENV
from chaosagenkit.exceptions import ProcessStartError

__all__ = [
    "EXIT_BAD_ARGUMENTS",
    "EXIT_START_FAILED",
    "PARENT_PID_ENV",
    "READY_FIELDS",
    "Child",
    "ParentWatch",
    "announce_ready",
    "expected_parent",
    "fail",
    "kill",
    "parent_is_gone",
    "raise_open_files_limit",
    "start",
    "stop",
    "stop_requested",
]

logger = logging.getLogger("chaostoolkit")

#: Set by the parent: the pid whose death stops a child started with --exit-with-parent.
PARENT_PID_ENV = "CHAOSAGENKIT_PARENT_PID"
EXIT_BAD_ARGUMENTS = 2
EXIT_START_FAILED = 1
#: The fields each command's ready line must carry.
READY_FIELDS: dict[str, tuple[str, ...]] = {
    "serve": ("endpoint", "control"),
    "proxy": ("api",),
    "llm-proxy": ("base_url", "control", "mode"),
}
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
#: How long a child whose parent died may take to stop cleanly before it exits hard.
ORPHAN_GRACE_S = 5.0
PARENT_POLL_S = 0.25
_MAX_STDOUT_LINE = 64 * 1024
_MAX_STDERR_LINE = 4096
_STDERR_LINES_KEPT = 50
_STDERR_LINES_SHOWN = 5
_STDERR_DRAIN_S = 2.0
#: Each started child's stderr reader, so that stopping the child also ends its thread.
_stderr_readers: weakref.WeakKeyDictionary[subprocess.Popen[bytes], _StderrTail] = weakref.WeakKeyDictionary()


# -- the parent's half ---------------------------------------------------------------


@dataclass
class Child:
    """A child daemon this process started, and its ready line."""

    command: str  # serve | proxy
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    argv: list[str]
    _stderr: _StderrTail = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr_tail(self) -> str:
        """The last lines the child wrote on stderr, on one line."""
        return self._stderr.text()

    def stop(self, grace_s: float = STOP_GRACE_S) -> int:
        return stop(self.process, grace_s)

    def kill(self) -> int:
        return kill(self.process)


def start(
    command: str,
    args: list[str],
    *,
    label: str,
    token: str | None = None,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    prefix: tuple[str, ...] = (),
) -> Child:
    """Run ``chaosagenkit COMMAND ARGS --exit-with-parent``; return once it is ready.

    ``label`` names the child in errors ("server 'target'"); ``token`` goes to
    the child in ``$CHAOSAGENKIT_TOKEN``; ``env`` adds variables; ``prefix`` runs
    it through a wrapper that execs it in place (``ip netns exec NS``: the pid,
    and so the exit-with-parent bond, stay the same). Raises
    ``ProcessStartError`` (after stopping and reaping the child) when it
    exits, prints a bad ready line or stays silent for ``ready_timeout_s``.
    """
    argv = [*prefix, sys.executable, "-m", "chaosagenkit", command, *args]
    if "--exit-with-parent" not in argv:
        argv.append("--exit-with-parent")
    child_env = {**os.environ, **(env or {}), PARENT_PID_ENV: str(os.getpid())}
    child_env.pop(TOKEN_ENV, None)  # a child has exactly the token it is given, or none
    if token:
        child_env[TOKEN_ENV] = token
    try:
        process = subprocess.Popen(
            [*prefix, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
        )
    except OSError as e:
        raise ProcessStartError(f"{label}: cannot run chaosagenkit {command}: {e}") from e
    stderr = _StderrTail(process, f"chaosagenkit {command}")
    try:
        ready = _await_ready(process, command, ready_timeout_s)
    except BaseException as e:  # a failed start and Ctrl-C alike: never leave the child behind
        stop(process)
        if not isinstance(e, ProcessStartError):
            raise
        tail = stderr.text()
        raise ProcessStartError(
            f"{label}: chaosagenkit {command} {e}{' | stderr: ' + tail if tail else ''}"
        ) from None
    finally:
        assert process.stdout is not None
        process.stdout.close()  # the child points its stdout at stderr once ready
    logger.debug(f"chaosagenkit {command} for {label} is ready (pid {process.pid})")
    return Child(command=command, process=process, ready=ready, argv=argv, _stderr=stderr)


def stop(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> int:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL; always reap. Returns the exit status."""
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
    except BaseException:  # a second Ctrl-C while waiting: still leave nothing running
        kill(process)
        raise
    return kill(process)


def kill(process: subprocess.Popen[bytes]) -> int:
    """SIGKILL (unless it already exited) and reap; its stderr reader ends too. Returns the exit status."""
    if process.poll() is None:
        process.kill()
    code = process.wait()
    # A stopped child leaves no thread behind: a runner that forks workers
    # (suite.run_suite with jobs > 1) refuses to while any thread runs.
    reader = _stderr_readers.pop(process, None)
    if reader is not None:
        reader.join()
    return code


def _await_ready(process: subprocess.Popen[bytes], command: str, timeout_s: float) -> dict[str, Any]:
    """Read stdout lines until the ready line; fail if the child exits, stays silent or says nonsense."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                ready = _ready_line(line, command)
                if ready is not None:
                    return ready
            if len(buffer) > _MAX_STDOUT_LINE:
                raise ProcessStartError(f"printed a line longer than {_MAX_STDOUT_LINE} bytes on stdout")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProcessStartError(f"printed no ready line within {timeout_s:g} s")
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                try:
                    code: int | str = process.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    code = "unknown (it closed its stdout)"
                raise ProcessStartError(f"exited with status {code} before it was ready")
            buffer += chunk


def _ready_line(line: bytes, command: str) -> dict[str, Any] | None:
    """The ready message in ``line``, None for other output; a ready line lacking a field is an error."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("event") != "ready":
        return None
    missing = [name for name in READY_FIELDS[command] if not isinstance(message.get(name), str)]
    if missing:
        raise ProcessStartError(
            f"printed a bad ready line (no {', '.join(missing)}): {line[:200].decode(errors='replace')}"
        )
    return message


class _StderrTail:
    """Reads a child's stderr in a thread, keeping its last lines (bounded) and logging each at DEBUG."""

    def __init__(self, process: subprocess.Popen[bytes], label: str) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES_KEPT)
        self._thread = threading.Thread(
            target=self._pump, args=(process, label), name=f"stderr-{process.pid}", daemon=True
        )
        self._thread.start()
        _stderr_readers[process] = self

    def join(self) -> None:
        """Wait for the reader to reach the end of the pipe (bounded: a grandchild may hold it open)."""
        self._thread.join(_STDERR_DRAIN_S)

    def _pump(self, process: subprocess.Popen[bytes], label: str) -> None:
        assert process.stderr is not None
        with process.stderr:
            while raw := process.stderr.readline(_MAX_STDERR_LINE):
                line = raw.decode(errors="replace").rstrip()
                self._lines.append(line)
                logger.debug(f"{label}[{process.pid}]: {line}")

    def text(self) -> str:
        # A child that just exited may still have lines in the pipe; a grandchild that
        # inherited stderr may keep it open, hence the bound.
        self.join()
        shown = [line.strip() for line in list(self._lines) if line.strip()]
        return " | ".join(shown[-_STDERR_LINES_SHOWN:])


# -- the child's half ----------------------------------------------------------------


def expected_parent() -> int:
    """The pid in ``$CHAOSAGENKIT_PARENT_PID`` (removed from the environment), else our parent's now."""
    value = os.environ.pop(PARENT_PID_ENV, "")
    return int(value) if value.isdigit() else os.getppid()


def parent_is_gone(parent: int) -> bool:
    """True once this process is no longer the child of ``parent`` (an orphan is re-parented)."""
    return os.getppid() != parent


class ParentWatch:
    """The exit-with-parent watchdog of a child daemon: a thread, so a blocked event loop cannot stop it.

    ``start()`` exits at once (status 0) if the parent is already gone. When
    the parent dies later, the thread runs ``cleanups`` (things only this
    process can still remove), then the clean stop given to ``stop_with``,
    and exits hard ``grace_s`` later if the process still runs; before
    ``stop_with`` (while the daemon starts) it exits at once.
    """

    def __init__(self, parent: int, command: str, grace_s: float = ORPHAN_GRACE_S) -> None:
        self.parent = parent
        self.command = command
        self.grace_s = grace_s
        self.cleanups: list[Callable[[], None]] = []
        self._request_stop: Callable[[], object] | None = None

    def start(self) -> ParentWatch:
        if parent_is_gone(self.parent):
            print(
                f"chaosagenkit {self.command}: parent process {self.parent} is already gone: not starting",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(0)
        threading.Thread(target=self._watch, name="exit-with-parent", daemon=True).start()
        return self

    def stop_with(self, request_stop: Callable[[], object]) -> None:
        """How to ask the running daemon to stop cleanly (called from the watchdog thread)."""
        self._request_stop = request_stop

    def _watch(self) -> None:
        while not parent_is_gone(self.parent):
            time.sleep(PARENT_POLL_S)
        log = logging.getLogger(f"chaosagenkit.{self.command}")
        log.warning("parent process %d is gone: stopping", self.parent)
        for cleanup in self.cleanups:
            try:
                cleanup()
            except Exception as e:  # the next clean-up and the exit must still happen
                log.warning("clean-up after the parent's death failed: %s", e)
        if self._request_stop is not None:
            try:
                self._request_stop()
                time.sleep(self.grace_s)
            except Exception:  # the loop is already closed: nothing to wait for
                pass
        os._exit(0)  # nobody waits for an orphan's status; a blocked loop cannot hold us


def stop_requested(watch: ParentWatch | None) -> asyncio.Event:
    """An event that SIGTERM, SIGINT or (with ``watch``) the parent's death sets; call it in the daemon's loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if watch is not None:
        watch.stop_with(lambda: loop.call_soon_threadsafe(stop.set))
    return stop


def announce_ready(ready: dict[str, Any]) -> None:
    """Print the ready line, then point stdout at stderr (later prints never block on a full pipe)."""
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def fail(command: str, status: int, message: str) -> NoReturn:
    """Exit with ``status`` after ONE line on stderr: ``chaosagenkit COMMAND: error: MESSAGE``."""
    print(f"chaosagenkit {command}: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.exit(status)


def raise_open_files_limit(command: str) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (logged once); return the soft limit now.

    Each proxied connection costs two descriptors and each control client
    one: the usual soft limit of 1024 runs out long before memory does.
    """
    log = logging.getLogger(f"chaosagenkit.{command}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else _kernel_open_files_maximum()
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, e)
            return soft
        log.info("open-file limit raised from %d to %d", soft, target)
        return target
    return soft


def _kernel_open_files_maximum() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1048576  # Linux's default nr_open
