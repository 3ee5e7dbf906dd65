"""Python providers and a control for the tiny experiments that make report fixtures.

They stand for real activities: each does what the experiment needs to end
the way a test wants (a value inside or outside a tolerance, a probe that
raises, an interruption) and records faults on the real fault timeline the
way chaosagenkit's actions do.
"""

from __future__ import annotations

from typing import Any

from chaoslib.exceptions import InterruptExecution

from chaosagenkit.sandbox import SANDBOX


def value(v: Any = None) -> Any:
    """Return ``v``: a probe whose output the experiment chooses."""
    return v


def fail(message: str = "backend unreachable") -> None:
    """Raise, as a probe does when the system under test cannot be reached."""
    raise RuntimeError(message)


def interrupt(reason: str = "operator stop") -> None:
    """Stop the whole run, as a safeguard or a control does."""
    raise InterruptExecution(reason)


def record(event: str, target: str, kind: str = "", fault_id: str = "", duration_s: float = 0.0) -> dict:
    """Put an entry on the run's fault timeline, as an inject/clear action does."""
    return SANDBOX.record_event(
        event, target, kind=kind or None, fault_id=fault_id or None, duration_s=duration_s or None
    )


def before_method_control(context: Any = None, **kwargs: Any) -> None:
    """A control that stops the run before its method, as a failing sandbox set-up does."""
    raise InterruptExecution("the sandbox could not be built")


def target_answers(target: str = "target") -> bool:
    """Whether ``target`` is up according to the run's timeline (no crash since its last start)."""
    up = True
    for event in SANDBOX.timeline():
        if event["target"] == target and event["event"] in ("crash", "restart", "start"):
            up = event["event"] != "crash"
    return up


def block_until_interrupted(marker: str, timeout_s: float = 60.0) -> str:
    """Say it started (``marker`` file), then wait for a signal; give up after ``timeout_s``."""
    import time
    from pathlib import Path

    Path(marker).write_text("blocking")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "never interrupted"


def answer_or_raise(target: str = "target") -> bool:
    """Like ``target_answers``, but raise (as a real probe does) once ``target`` crashed."""
    if not target_answers(target):
        raise ConnectionError(f"{target} does not answer")
    return True
