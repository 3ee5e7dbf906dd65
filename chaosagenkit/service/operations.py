"""What the service activities do to a chaos host, through its control API.

One function per activity, each taking the ``server`` (a name of this run
or a control URL) and doing one thing. Fault specs are validated HERE,
locally, before any request is sent, so a bad argument changes nothing even
on a host that is unreachable. Every change lands on the run's fault
timeline (``SANDBOX.record_event``): inject, clear, crash.
"""

from __future__ import annotations

import subprocess
from typing import Any

from chaosagenkit.exceptions import ConfigurationError, ControlAPIError, TargetError
from chaosagenkit.faults.service import Crash, parse_fault
from chaosagenkit.sandbox import SANDBOX, ServerRef
from chaosagenkit.service import hosts
from chaosagenkit.service.hosts import token_from

__all__ = ["clear", "crash", "describe", "faults", "inject", "is_up", "stats", "token_from"]

#: How long crash_server waits for a host this run started to be gone.
CRASH_WAIT_S = 10.0


def inject(server: str, fault: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """Validate ``fault``, add it on ``server``; return the fault the host created."""
    spec = parse_fault(fault)
    ref = hosts.resolve_server(server, token)
    hosts.remember_fault_host(ref)
    created = hosts.client_for(ref).post("/faults", spec.to_json())
    SANDBOX.record_injected(ref.name, created)
    return created


def clear(server: str, token: str | None = None) -> list[dict[str, Any]]:
    """Remove every fault on ``server``; return the removed faults.

    A host this run started whose process has exited holds no faults: nothing
    to remove, recorded as such (an agent that died under a fault is what the
    experiment's expectations judge, not a failure to clean up).
    """
    ref = hosts.resolve_server(server, token)
    if ref.process is not None and ref.process.poll() is not None:
        SANDBOX.record_event("clear", ref.name, fault_id=None, removed=[], exited=ref.process.returncode)
        return []
    removed = hosts.client_for(ref).delete("/faults")["removed"]
    SANDBOX.record_event("clear", ref.name, fault_id=None, removed=[f["id"] for f in removed])
    return removed


def crash(server: str, when: str, after_requests: int, token: str | None = None) -> dict[str, Any]:
    """Make ``server`` exit (now, on its next request, or after N more requests)."""
    body: dict[str, Any] = {"when": when}
    if after_requests:
        body["after_requests"] = after_requests
    spec = Crash.from_json({"kind": "crash", **body})
    ref = hosts.resolve_server(server, token)
    hosts.remember_fault_host(ref)
    answer = hosts.client_for(ref).post("/crash", body)
    SANDBOX.record_event(
        "crash",
        ref.name,
        kind="crash",
        fault_id=answer["fault"]["id"],
        when=spec.when,
        after_requests=spec.after_requests,
    )
    result = {"server": ref.name, "when": spec.when, "fault": answer["fault"], "exit_code": None}
    if spec.when == "now" and ref.process is not None:
        try:
            result["exit_code"] = ref.process.wait(timeout=CRASH_WAIT_S)
        except subprocess.TimeoutExpired as e:
            raise TargetError(f"server {ref.name!r} was still running {CRASH_WAIT_S:g} s after crash") from e
    return result


def faults(server: str, token: str | None = None) -> list[dict[str, Any]]:
    return hosts.client_for(hosts.resolve_server(server, token)).get("/faults")


def stats(server: str, token: str | None = None) -> dict[str, Any]:
    return hosts.client_for(hosts.resolve_server(server, token)).get("/stats")


def is_up(server: str, token: str | None = None) -> bool:
    """True when ``server`` answers GET /health (and, if this run started it, its process runs).

    A 401 is not "down": it means the token is missing or wrong, a configuration error.
    """
    try:
        ref = hosts.resolve_server(server, token)
        if ref.process is not None and ref.process.poll() is not None:
            return False
        health = hosts.client_for(ref, timeout_s=3.0).get("/health")
        return isinstance(health, dict) and health.get("status") == "ok"
    except ControlAPIError as e:
        if e.status == 401:
            raise ConfigurationError(
                f"configuration.{hosts.TOKEN_CONFIG_KEY}",
                f"is missing or wrong: {e.url} answered 401",
            ) from e
        return False
    except TargetError:
        return False


def describe(ref: ServerRef) -> dict[str, Any]:
    """A server as activities return it."""
    return {
        "name": ref.name,
        "endpoint": ref.endpoint,
        "control": ref.control_url,
        "pid": ref.process.pid if ref.process is not None else None,
        "started_by_run": ref.process is not None,
    }
