"""The run's guard: deletes the run's namespaces if the chaos process dies, and expires tc faults.

``python -m chaosagenkit.kernel.guard --state FILE`` is started by the run
before it creates anything, in a session of its own (Ctrl-C on the terminal
does not reach it). Its stdin is a pipe whose other end only the chaos
process holds, so (a design rule of the kernel package):

- stdin closes without ``{"op": "release"}`` -> the chaos process died
  (SIGKILL included): the guard kills whatever runs in the run's namespaces
  (listed in the state file), deletes them, removes the state file, exits;
- ``{"op": "release"}`` -> the run tore everything down itself: exit;
- ``{"op": "schedule", "key": K, "entries": [{"after_s", "commands"}]}``
  replaces the timed commands of key K (a device's tc tree): each entry's
  commands run after ``after_s`` seconds. That is how a qdisc, which has
  no TTL of its own, expires on time even when the chaos process is stuck.

State files (``STATE_DIR/<run id>.json``: owner pid and start time,
namespaces) are written BEFORE the namespaces exist, so ``sweep_stale``,
which the next run calls first, can tell a live run's namespaces from those
of a run whose chaos process and guard both died: it lists the namespaces
first, then reads the state files, and deletes only namespaces of this
package whose owner is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import sys
import time
from typing import Any

from chaosagenkit.kernel.system import list_namespaces, process_start_time, remove_namespaces, run
from chaosagenkit.kernel.topology import Command, run_id_of

__all__ = ["STATE_DIR", "main", "read_state", "sweep_stale", "write_state"]

STATE_DIR = "/run/chaosagenkit"


def state_path(run_id: str) -> str:
    return os.path.join(STATE_DIR, f"{run_id}.json")


def write_state(run_id: str, namespaces: list[str]) -> str:
    """Record that this process owns ``namespaces``; return the state file's path."""
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    path = state_path(run_id)
    state = {
        "run_id": run_id,
        "owner_pid": os.getpid(),
        "owner_start": process_start_time(os.getpid()),
        "namespaces": namespaces,
    }
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(state, f)
    os.replace(temporary, path)
    return path


def read_state(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def remove_state(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def owner_alive(state: dict[str, Any]) -> bool:
    pid = state.get("owner_pid")
    return isinstance(pid, int) and process_start_time(pid) == state.get("owner_start")


def sweep_stale() -> list[str]:
    """Delete the namespaces of runs whose chaos process is gone; return the names deleted."""
    namespaces = [ns for ns in list_namespaces() if run_id_of(ns)]  # first: see the module docstring
    states = {}
    if os.path.isdir(STATE_DIR):
        for name in os.listdir(STATE_DIR):
            if name.endswith(".json"):
                state = read_state(os.path.join(STATE_DIR, name))
                if state is not None:
                    states[name.removesuffix(".json")] = state
    live_runs = {run_id for run_id, state in states.items() if owner_alive(state)}
    stale = [ns for ns in namespaces if run_id_of(ns) not in live_runs]
    deleted = remove_namespaces(stale) if stale else []
    for run_id, state in states.items():
        if run_id not in live_runs:
            remove_namespaces([ns for ns in state.get("namespaces", []) if run_id_of(ns) == run_id])
            remove_state(state_path(run_id))
    return deleted


def _teardown(state_file: str) -> None:
    state = read_state(state_file) or {}
    run_id = state.get("run_id")
    remove_namespaces([ns for ns in state.get("namespaces", []) if run_id and run_id_of(ns) == run_id])
    remove_state(state_file)


def _run_due(schedules: dict[str, list[tuple[float, list[Command]]]], now: float) -> None:
    for key, entries in schedules.items():
        while entries and entries[0][0] <= now:
            _, commands = entries.pop(0)
            for command in commands:
                try:
                    run(command)
                except Exception as e:  # the next entry may still apply; say what failed
                    print(f"guard: {key}: {e}", file=sys.stderr)


def _command(line: bytes, schedules: dict[str, list[tuple[float, list[Command]]]], now: float) -> bool:
    """Apply one stdin line; return True on release."""
    try:
        message = json.loads(line)
    except ValueError:
        return False
    if message.get("op") == "release":
        return True
    if message.get("op") == "schedule":
        schedules[str(message["key"])] = sorted(
            (
                now + float(entry["after_s"]),
                [
                    Command(tuple(c["argv"]), c.get("stdin"), bool(c.get("may_fail")))
                    for c in entry["commands"]
                ],
            )
            for entry in message["entries"]
        )
    return False


def guard(state_file: str) -> None:
    """Watch stdin until release (exit) or EOF (tear the run down); run timed commands meanwhile."""
    stdin = sys.stdin.buffer.fileno()
    selector = selectors.DefaultSelector()
    selector.register(stdin, selectors.EVENT_READ)
    schedules: dict[str, list[tuple[float, list[Command]]]] = {}
    pending = b""
    while True:
        due = [entries[0][0] for entries in schedules.values() if entries]
        now = time.monotonic()
        timeout = max(0.0, min(due) - now) if due else None
        if selector.select(timeout):
            chunk = os.read(stdin, 65536)
            if not chunk:
                _teardown(state_file)
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if _command(line, schedules, time.monotonic()):
                    return
        _run_due(schedules, time.monotonic())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaosagenkit.kernel.guard")
    parser.add_argument("--state", required=True, help="the run's state file")
    args = parser.parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    print(json.dumps({"event": "ready", "pid": os.getpid()}), flush=True)
    guard(args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
