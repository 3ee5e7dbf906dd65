"""The one supervisor of child processes: both children, every path, real processes.

Each path is run for ``chaosagenkit serve`` AND ``chaosagenkit proxy``, so
they are shown to behave the same way: ready, bad ready line, death during
start, start timeout, Ctrl-C during start, parent death (also with a blocked
event loop), stop, kill, the open-file limit, and the unix socket directory
of a killed run.

A real child cannot be made, on demand, to print a bad ready line, to stay
silent, or to block its event loop. For those three paths only, a test
``sitecustomize`` (``HOOKS`` below) is put on the child's PYTHONPATH; it says
which behaviour it fakes and touches nothing else.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaosagenkit import supervisor
from chaosagenkit.control_client import ControlClient
from chaosagenkit.exceptions import ControlAPIError, ProcessStartError
from chaosagenkit.network import daemons
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.service import hosts
from tests.integration.test_service_support import REPO, pid_alive, wait_for

pytestmark = [pytest.mark.chaos]

COMMANDS = ["serve", "proxy"]
TOKEN = "a-token-of-24-characters"

HOOKS = '''
"""Test fake (tests/integration/test_supervisor.py): what a real child cannot be made to do."""
import os

_hook = os.environ.pop("CHAOSAGENKIT_TEST_HOOK", "")
if _hook == "bad-ready-line":  # a ready line without the command's fields
    print('{"event": "ready", "pid": 1}', flush=True)
elif _hook == "silent":  # never gets as far as a ready line
    import time

    time.sleep(3600)
elif _hook == "block-after-ready":  # the event loop never runs again once ready
    import time

    import chaosagenkit.supervisor as _supervisor

    _announce = _supervisor.announce_ready

    def _announce_then_block(ready):
        _announce(ready)
        time.sleep(3600)

    _supervisor.announce_ready = _announce_then_block
'''


@pytest.fixture(scope="module")
def hook_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hooks")
    (directory / "sitecustomize.py").write_text(HOOKS)
    return directory


def hooked(hook_dir: Path, hook: str) -> dict[str, str]:
    """The environment that makes a child fake ``hook``."""
    path = os.pathsep.join(p for p in (str(hook_dir), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "CHAOSAGENKIT_TEST_HOOK": hook}


def args(command: str) -> list[str]:
    return ["--listen", "127.0.0.1:0"] if command == "proxy" else ["--endpoint", "tcp://127.0.0.1:0"]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


# -- ready -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_ready_line_token_in_the_environment_and_a_clean_stop(command):
    child = supervisor.start(command, args(command), label="test child", token=TOKEN)
    try:
        assert child.ready["event"] == "ready" and child.ready["pid"] == child.pid
        assert all(isinstance(child.ready[f], str) for f in supervisor.READY_FIELDS[command])
        assert child.process.stdout.closed, "the parent keeps no pipe it no longer reads"
        cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes().split(b"\0")
        assert TOKEN.encode() not in cmdline and b"--exit-with-parent" in cmdline
        environ = Path(f"/proc/{child.pid}/environ").read_bytes().split(b"\0")
        assert f"CHAOSAGENKIT_TOKEN={TOKEN}".encode() in environ
        url = child.ready["control" if command == "serve" else "api"]
        path = "/health" if command == "serve" else "/version"
        assert ControlClient(url, TOKEN).get(path)
        with pytest.raises(ControlAPIError, match="401"):
            ControlClient(url).get(path)
    finally:
        assert child.stop() == 0
    assert child.process.returncode == 0
    assert f"stderr-{child.pid}" not in {t.name for t in threading.enumerate()}, (
        "its stderr reader ended with it"
    )


# -- failed starts ---------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_ready_line_is_a_start_error_and_the_child_is_reaped(command, hook_dir):
    with pytest.raises(ProcessStartError) as caught:
        supervisor.start(command, args(command), label="test child", env=hooked(hook_dir, "bad-ready-line"))
    missing = ", ".join(supervisor.READY_FIELDS[command])
    assert f"test child: chaosagenkit {command} printed a bad ready line (no {missing})" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_child_that_dies_during_start_reports_its_status_and_stderr(command, taken_port):
    bind = (
        ["--listen", f"127.0.0.1:{taken_port}"]
        if command == "proxy"
        else ["--control", f"127.0.0.1:{taken_port}"]
    )
    with pytest.raises(ProcessStartError) as caught:
        supervisor.start(command, bind, label="test child")
    message = str(caught.value)
    assert f"chaosagenkit {command} exited with status 1 before it was ready | stderr: " in message
    assert "address already in use" in message.lower() and "\n" not in message


@pytest.mark.parametrize("command", COMMANDS)
def test_a_child_that_stays_silent_is_stopped_at_the_timeout(command, hook_dir):
    with pytest.raises(ProcessStartError, match=r"printed no ready line within 2 s"):
        supervisor.start(
            command, args(command), label="test child", env=hooked(hook_dir, "silent"), ready_timeout_s=2
        )


STARTERS: dict[str, Callable[[], object]] = {
    "serve": lambda: hosts.start_server("interrupted"),
    "proxy": lambda: daemons.start_daemon(name="interrupted"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_ctrl_c_during_start_stops_the_child_and_stays_a_keyboard_interrupt(command, hook_dir, monkeypatch):
    for key, value in hooked(hook_dir, "silent").items():  # through the real wrappers, which take no env
        monkeypatch.setenv(key, value)
    SANDBOX.reset()
    main = threading.main_thread().ident
    started: list[int] = []

    def waiting_for_ready() -> bool:
        frame = sys._current_frames().get(main)
        while frame is not None:
            if frame.f_code is supervisor._await_ready.__code__:
                started.append(frame.f_locals["process"].pid)
                return True
            frame = frame.f_back
        return False

    def press_ctrl_c() -> None:
        wait_for(waiting_for_ready, timeout_s=60, what="the start to wait for the ready line")
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=press_ctrl_c, daemon=True)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            STARTERS[command]()
    finally:
        thread.join(timeout=60)
    assert type(caught.value) is KeyboardInterrupt, "Ctrl-C must not become another error"
    assert started and not pid_alive(started[0]), "the half-started child still runs"
    assert SANDBOX.servers == {} and SANDBOX.timeline() == []


# -- the parent's death ------------------------------------------------------------------

PARENT = """
import json, sys
from chaosagenkit import supervisor
child = supervisor.start(sys.argv[1], json.loads(sys.argv[2]), label="orphan", env=json.loads(sys.argv[3]))
print(child.pid, flush=True)
sys.stdin.read()  # live until killed
"""


@pytest.mark.slow
@pytest.mark.parametrize("hook", ["", "block-after-ready"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_child_does_not_outlive_its_killed_parent_even_with_a_blocked_event_loop(command, hook, hook_dir):
    env = hooked(hook_dir, hook) if hook else {}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, command, json.dumps(args(command)), json.dumps(env)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    child_pid = None
    try:
        child_pid = int(parent.stdout.readline())
        assert pid_alive(child_pid)
        parent.kill()
        parent.wait(timeout=10)
        wait_for(lambda: not pid_alive(child_pid), timeout_s=30, what="the orphaned child to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child_pid is not None and pid_alive(child_pid):  # do not leak it if the test failed
            os.kill(child_pid, signal.SIGKILL)
        parent.stdin.close()
        parent.stdout.close()


SHORT_LIVED_PARENT = """
import os, subprocess, sys
from chaosagenkit import supervisor
env = {**os.environ, supervisor.PARENT_PID_ENV: str(os.getpid())}
child = subprocess.Popen([sys.executable, "-m", "chaosagenkit", sys.argv[1], "--exit-with-parent"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
print(child.pid, flush=True)
os._exit(0)
"""


@pytest.mark.parametrize("command", COMMANDS)
def test_a_child_whose_parent_dies_while_it_starts_does_not_outlive_it(command):
    done = subprocess.run(
        [sys.executable, "-c", SHORT_LIVED_PARENT, command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    child_pid = int(done.stdout)
    try:
        wait_for(lambda: not pid_alive(child_pid), timeout_s=30, what="the orphaned child to exit")
    finally:
        if pid_alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_child_started_for_a_parent_that_is_not_its_parent_exits_at_once(command):
    env = {**os.environ, supervisor.PARENT_PID_ENV: "1"}  # pid 1 is never this test's pid
    done = subprocess.run(
        [sys.executable, "-m", "chaosagenkit", command, *args(command), "--exit-with-parent"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0 and done.stdout == ""
    assert f"chaosagenkit {command}: parent process 1 is already gone: not starting" in done.stderr


# -- stop and kill ---------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_stop_kills_a_child_that_ignores_sigterm_after_the_grace(command, hook_dir):
    # With its event loop blocked, the child's SIGTERM handler never runs.
    child = supervisor.start(
        command, args(command), label="test child", env=hooked(hook_dir, "block-after-ready")
    )
    assert child.stop(grace_s=1) == -signal.SIGKILL
    assert not pid_alive(child.pid)


@pytest.mark.parametrize("command", COMMANDS)
def test_kill_is_sigkill_and_reaps(command):
    child = supervisor.start(command, args(command), label="test child")
    assert child.kill() == -signal.SIGKILL
    assert child.process.returncode == -signal.SIGKILL and not pid_alive(child.pid)
    assert child.stop() == -signal.SIGKILL, "stopping a stopped child does nothing"
    assert f"stderr-{child.pid}" not in {t.name for t in threading.enumerate()}, (
        "its stderr reader ended with it"
    )


# -- open files ------------------------------------------------------------------------


def open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc")


@pytest.mark.parametrize("command", COMMANDS)
def test_each_child_raises_its_open_files_limit_to_the_hard_limit(command):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256
    if hard != resource.RLIM_INFINITY and hard <= low:
        pytest.skip(f"the hard open-file limit here is {hard}: nothing to raise")
    if len(os.listdir("/proc/self/fd")) > low // 2:
        pytest.skip("this process has too many files open to lower its limit for the test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        child = supervisor.start(command, args(command), label="test child")  # inherits soft = 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        child_soft, child_hard = open_files_limits(child.pid)
        assert child_hard == hard if hard != resource.RLIM_INFINITY else True
        assert child_soft == child_hard and child_soft > low
        assert child.ready["open_files_limit"] == child_soft
    finally:
        child.stop()


# -- the unix socket directory of a killed run -----------------------------------------

UNIX_PARENT = """
from chaosagenkit.service import hosts
ref = hosts.start_or_register({"name": "u", "transport": "unix"})
print(ref.process.pid, ref.endpoint, flush=True)
import sys
sys.stdin.read()  # live until killed
"""


@pytest.mark.slow
def test_no_temporary_folder_outlives_a_killed_run(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    parent = subprocess.Popen(
        [sys.executable, "-c", UNIX_PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, env=env
    )
    host_pid = None
    try:
        host_pid, endpoint = parent.stdout.readline().decode().split()
        host_pid = int(host_pid)
        socket_dir = Path(endpoint.removeprefix("unix://")).parent
        assert socket_dir.parent == tmp_path and socket_dir.is_dir()
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_for(lambda: not pid_alive(host_pid), timeout_s=30, what="the orphaned host to exit")
        assert list(tmp_path.iterdir()) == [], "the killed run left its socket directory behind"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if host_pid is not None and pid_alive(host_pid):
            os.kill(host_pid, signal.SIGKILL)
        parent.stdin.close()
        parent.stdout.close()
