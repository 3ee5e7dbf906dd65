"""LLM fault endpoints of a chaos run: start (``chaosagenkit llm-proxy`` children) or register, and tear down.

``chaosagenkit.control`` calls ``start_or_register`` for each entry of its
``llm_endpoints`` argument before the servers start (so a served agent's
``env`` can say ``{llm:NAME}``, which becomes that endpoint's base URL) and
``teardown`` whatever happens. Activities find an endpoint with
``resolve``: a name of this run, or the control URL of an endpoint running
elsewhere. Endpoints live in ``SANDBOX.llm_endpoints``.

A started endpoint is a child process with ``--exit-with-parent`` and the
run's derived seed (``llm:NAME``); its token travels in the environment,
never in argv. It is started, watched and stopped by
``chaosagenkit.supervisor``, like the host and the fault proxy.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from chaosagenkit import supervisor
from chaosagenkit.activity import seed_or_none
from chaosagenkit.control_client import ControlClient, NotAControlAPI
from chaosagenkit.exceptions import ConfigurationError, TargetError
from chaosagenkit.llm.cli import parse_upstream
from chaosagenkit.llm.faults import parse_llm_fault
from chaosagenkit.llm.responder import Responder
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.validation import require_known_keys, require_text

__all__ = [
    "ENDPOINT_SPEC_KEYS",
    "TOKEN_CONFIG_KEY",
    "LlmEndpointRef",
    "base_url_of",
    "clear",
    "clear_all_faults",
    "client_for",
    "inject",
    "requests",
    "resolve",
    "start_endpoint",
    "start_or_register",
    "stats",
    "teardown",
]

#: Keys an entry of the control's ``llm_endpoints`` list may use.
ENDPOINT_SPEC_KEYS = ("name", "upstream", "script", "seed", "token", "control_url")
#: Configuration key holding the token of endpoints this run did not start.
TOKEN_CONFIG_KEY = "chaosagenkit_llm_token"
START_TIMEOUT_S = 20.0

_lock = threading.RLock()


@dataclass
class LlmEndpointRef:
    """An LLM fault endpoint known to this run."""

    name: str
    base_url: str  # http://127.0.0.1:PORT (OpenAI SDKs take base_url + "/v1")
    control_url: str
    token: str | None = None
    process: subprocess.Popen[bytes] | None = None  # set when this run started it
    mode: str = "built-in"


def start_endpoint(
    name: str,
    *,
    upstream: str = "",
    script: list[dict[str, Any]] | None = None,
    seed: int | None = None,
    token: str | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> LlmEndpointRef:
    """Start ``chaosagenkit llm-proxy`` as a child on ephemeral 127.0.0.1 ports; register it as ``name``.

    Raises ``ConfigurationError`` for bad arguments (nothing started) and
    ``ProcessStartError`` (with the child's stderr) when it does not come up.
    """
    require_text(name, "name")
    if not isinstance(upstream, str):
        raise ConfigurationError("upstream", f"must be a base URL string, got {upstream!r}")
    upstream = parse_upstream(upstream)
    Responder(script or [])  # a bad rule fails here, named, before anything starts
    with _lock:
        if name in SANDBOX.llm_endpoints:
            raise ConfigurationError("name", f"an LLM endpoint named {name!r} is already registered")
        args: list[str] = []
        if seed is not None:
            args += ["--seed", str(seed)]
        if upstream:
            args += ["--upstream", upstream]
        script_file = None
        if script:
            fd, script_file = tempfile.mkstemp(prefix="chaosagenkit-llm-script-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(script, f)
            args += ["--script", script_file]
        try:
            child = supervisor.start(
                "llm-proxy", args, label=f"LLM endpoint {name!r}", token=token, ready_timeout_s=timeout_s
            )
        finally:
            if script_file:
                os.unlink(script_file)  # read at start-up; gone either way
        process, ready = child.process, child.ready
        ref = LlmEndpointRef(name, ready["base_url"], ready["control"], token, process, ready["mode"])
        SANDBOX.llm_endpoints[name] = ref
        SANDBOX.record_event(
            "start",
            name,
            base_url=ref.base_url,
            control=ref.control_url,
            pid=process.pid,
            seed=ready["seed"],
            mode=ref.mode,
        )
        return ref


def start_or_register(spec: dict[str, Any]) -> LlmEndpointRef:
    """Start (or, with ``control_url``, register) the endpoint an experiment declares."""
    if not isinstance(spec, dict):
        raise ConfigurationError("llm_endpoints", f"entries must be objects, got {spec!r}")
    require_known_keys(spec, ENDPOINT_SPEC_KEYS, "an LLM endpoint field")
    name = require_text(spec.get("name"), "name")
    token = spec.get("token") or None
    if spec.get("control_url"):
        ref = _external(name, str(spec["control_url"]), token)
        with _lock:
            SANDBOX.llm_endpoints[name] = ref
        return ref
    script = spec.get("script") or []
    if not isinstance(script, list):
        raise ConfigurationError("script", f"must be a list of rules, got {script!r}")
    seed = seed_or_none(spec.get("seed"))
    if seed is None:
        seed = SANDBOX.component_seed(f"llm:{name}")
    return start_endpoint(name, upstream=spec.get("upstream") or "", script=script, seed=seed, token=token)


def resolve(endpoint: str, token: str | None = None) -> LlmEndpointRef:
    """An endpoint of this run by name, or one elsewhere by its control URL."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ConfigurationError(
            "endpoint", f"must be an LLM endpoint name or a control URL, got {endpoint!r}"
        )
    with _lock:
        ref = SANDBOX.llm_endpoints.get(endpoint)
        if ref is not None:
            return ref
        if endpoint.startswith(("http://", "https://")):
            url = endpoint.rstrip("/")
            for known in SANDBOX.llm_endpoints.values():
                if known.control_url == url:
                    return known
            ref = _external(url, url, token or _token_from_configuration())
            SANDBOX.llm_endpoints[url] = ref  # teardown clears its faults too (never stops it)
            return ref
        known_names = ", ".join(sorted(SANDBOX.llm_endpoints)) or "none"
    raise ConfigurationError(
        "endpoint",
        f"must be an LLM endpoint of this run (known: {known_names}) "
        f"or a control URL like http://127.0.0.1:PORT, got {endpoint!r}",
    )


def base_url_of(name: str) -> str:
    """The base URL of this run's endpoint ``name`` (what ``{llm:NAME}`` becomes in a server's env)."""
    ref = SANDBOX.llm_endpoints.get(name)
    if ref is None:
        known = ", ".join(sorted(SANDBOX.llm_endpoints)) or "none"
        raise ConfigurationError(
            "env", f"refers to LLM endpoint {name!r}, which is not started (started: {known})"
        )
    return ref.base_url


def client_for(ref: LlmEndpointRef, timeout_s: float = 10.0) -> ControlClient:
    return ControlClient(ref.control_url, ref.token, timeout_s=timeout_s)


# -- what the activities do ------------------------------------------------------


def inject(endpoint: str, fault: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """Validate ``fault`` here, add it on ``endpoint``; record it on the timeline; return it."""
    spec = parse_llm_fault(fault)
    ref = resolve(endpoint, token)
    created = client_for(ref).post("/faults", spec.to_json())
    SANDBOX.record_injected(ref.name, created)
    return created


def clear(endpoint: str, token: str | None = None) -> list[dict[str, Any]]:
    """Remove every fault on ``endpoint``; record it; return the removed faults."""
    ref = resolve(endpoint, token)
    removed = client_for(ref).delete("/faults")["removed"]
    SANDBOX.record_event("clear", ref.name, fault_id=None, removed=[f["id"] for f in removed])
    return removed


def stats(endpoint: str, token: str | None = None) -> dict[str, Any]:
    return client_for(resolve(endpoint, token)).get("/stats")


def requests(endpoint: str, last: int = 0, since_inject: bool = False, token: str | None = None) -> list[Any]:
    query = f"/requests?last={int(last)}&since_inject={'true' if since_inject else 'false'}"
    return client_for(resolve(endpoint, token)).get(query)["requests"]


# -- teardown ---------------------------------------------------------------------


def clear_all_faults() -> dict[str, int]:
    """DELETE /faults on every known endpoint that still runs; the unreachable are skipped."""
    cleared: dict[str, int] = {}
    with _lock:
        refs = list(SANDBOX.llm_endpoints.values())
    for ref in refs:
        if ref.process is not None and ref.process.poll() is not None:
            continue
        try:
            removed = [f["id"] for f in client_for(ref, timeout_s=5.0).delete("/faults")["removed"]]
        except TargetError:
            continue
        cleared[ref.name] = len(removed)
        if removed:
            SANDBOX.record_event("clear", ref.name, fault_id=None, removed=removed)
    return cleared


def teardown() -> None:
    """Clear every endpoint's faults, stop the ones this run started, forget them all."""
    clear_all_faults()
    with _lock:
        for name, ref in list(SANDBOX.llm_endpoints.items()):
            if ref.process is not None:
                code = ref.process.poll()
                supervisor.stop(ref.process)
                if code is None:
                    SANDBOX.record_event("stop", name, exit_code=ref.process.returncode)
            del SANDBOX.llm_endpoints[name]


def _external(name: str, control_url: str, token: str | None) -> LlmEndpointRef:
    url = control_url.rstrip("/")
    try:
        health = ControlClient(url, token).get("/health")
    except NotAControlAPI as e:
        raise ConfigurationError("control_url", f"{url} is not a chaosagenkit LLM endpoint: {e}") from e
    if not isinstance(health, dict) or not isinstance(health.get("base_url"), str):
        raise ConfigurationError("control_url", f"{url} is not a chaosagenkit LLM endpoint: {health!r:.100}")
    return LlmEndpointRef(name, health["base_url"], url, token, None, str(health.get("mode") or ""))


def _token_from_configuration() -> str | None:
    return SANDBOX.configuration.get(TOKEN_CONFIG_KEY) or None
