"""Chaos Toolkit actions of the chaos host: start, stop and crash hosts; inject service faults.

``server`` is the name of a server started in this run (by
``chaosagenkit.control`` or ``start_server``) or the control URL of a chaos
host running elsewhere (``http://127.0.0.1:PORT``; its token comes from the
configuration key ``chaosagenkit_server_token``). Every inject action takes
``duration_s``, a safety TTL after which the host drops the fault by itself,
so a fault never outlives a crashed or interrupted experiment by more than
that; it must be > 0 (no fault lives forever through Chaos Toolkit). Each
returns the fault the host created (``id``, ``kind``, ``params``,
``expires_at``) and records it on the run's fault timeline. See
docs/service.md.
"""

import logging
from typing import Any

from chaosagenkit.activity import activity, require_number, require_text, require_ttl
from chaosagenkit.limits import DEFAULT_TTL_S, MAX_SEED
from chaosagenkit.service import hosts, operations

__all__ = [
    "clear_faults",
    "crash_server",
    "inject_cpu_pressure",
    "inject_delay",
    "inject_fail_every",
    "inject_fail_first",
    "inject_failure_rate",
    "inject_large_responses",
    "inject_memory_pressure",
    "restart_server",
    "start_server",
    "stop_server",
]

logger = logging.getLogger("chaostoolkit")


@activity
def start_server(
    name: str,
    agent: str = "chaosagenkit.targets:echo",
    endpoint: str = "",
    transport: str = "tcp",
    control: str = "",
    token: str = "",
    seed: int = -1,
    env: dict = None,
    http_default_middleware: bool = True,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Start a chaos host (`chaosagenkit serve`) as a child of the chaos process.

    ``name`` is how later activities refer to it. ``agent`` is MODULE:FACTORY,
    a zero-argument callable returning an agenkit Agent. ``endpoint`` is where
    the agent is served (tcp://HOST:PORT, unix:///PATH, ws://, http://,
    h2c:// or grpc://HOST:PORT; port 0 = any free port); when empty,
    ``transport`` (tcp, unix, ws, http, h2c, grpc) picks 127.0.0.1 with a
    free port (unix: a socket in a temporary directory removed when the run
    ends). ``control`` is the control API's HOST:PORT (default 127.0.0.1,
    any free port); ``token`` its bearer token (required for a non-loopback
    control address). ``seed`` seeds the host's fault RNG; -1 derives it
    from the run's seed. ``env`` adds environment variables; ``{server:NAME}``
    in a value becomes that started server's agent endpoint.
    ``http_default_middleware`` keeps agenkit HTTPAgentServer's default rate
    limiter and timeout (http:// and h2c:// only).

    Waits until the host is ready and returns its name, endpoint, control
    URL and pid. Fails on bad arguments (nothing started) or when the host
    does not come up (with the end of its stderr).
    """
    require_text(name, "name")
    require_number(seed, "seed", minimum=-1, maximum=MAX_SEED, integer=True)  # -1: from the run's seed
    spec = {
        "name": name,
        "agent": agent,
        "transport": transport,
        "endpoint": endpoint,
        "control": control,
        "token": token,
        "seed": None if seed == -1 else seed,
        "env": env or {},
        "http_default_middleware": http_default_middleware,
    }
    ref = hosts.start_or_register(spec)
    logger.info(f"chaosagenkit: server '{name}' serving {ref.endpoint} (control {ref.control_url})")
    return operations.describe(ref)


@activity
def stop_server(name: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Stop a chaos host this run started (SIGTERM, then SIGKILL after 5 s).

    ``name`` is the server. Stopping a stopped server does nothing. Returns
    its name and exit code (0 for a clean stop, 70 after a crash fault,
    null if it was already gone before). It stays known to the run, so
    ``restart_server`` can bring it back.
    """
    require_text(name, "name")
    return {"name": name, "exit_code": hosts.stop_server(name)}


@activity
def restart_server(name: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Stop a chaos host this run started (if it runs) and start it again on the same addresses.

    ``name`` is the server. The new process binds the same agent endpoint
    and control port (so clients and proxies reconnect to the same address),
    with the same agent, seed and environment; it starts with no faults.
    Returns the server as start_server does.
    """
    require_text(name, "name")
    return operations.describe(hosts.restart_server(name))


@activity
def crash_server(
    server: str,
    when: str = "now",
    after_requests: int = 0,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Crash a chaos host: its process exits at once, without an answer or any cleanup.

    ``when``: "now" (right after acknowledging; waits up to 10 s for the
    process to be gone when this run started it), "next_request" (the next
    request is in flight when it dies, so its caller sees the connection
    drop), or "after_requests" (``after_requests`` more requests are
    answered, the next one crashes). The exit status is 70. Returns the
    crash fault and, for "now", the exit code.
    """
    require_number(after_requests, "after_requests", minimum=0, integer=True)
    return operations.crash(server, when, after_requests, operations.token_from(configuration))


@activity
def inject_failure_rate(
    server: str,
    rate: float,
    error: str = "exception",
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Fail a fraction of the host's requests, drawn from its seeded RNG.

    ``rate`` is the probability (0..1) that a request fails. ``error`` is how
    it fails: "exception" (an agent error), "connection" (agenkit's
    ConnectionError raised by the agent) or "timeout" (agenkit's
    AgentTimeoutError raised at once). ``duration_s`` (default 300) is the
    safety TTL. Returns the created fault.
    """
    return _inject(server, configuration, kind="failure_rate", rate=rate, error=error, duration_s=duration_s)


@activity
def inject_fail_first(
    server: str,
    count: int,
    error: str = "exception",
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Fail exactly the first ``count`` requests the host receives from now on.

    ``count`` >= 1. ``error``: "exception", "connection" or "timeout" (see
    inject_failure_rate). ``duration_s`` (default 300) is the safety TTL.
    Returns the created fault.
    """
    return _inject(server, configuration, kind="fail_first", count=count, error=error, duration_s=duration_s)


@activity
def inject_fail_every(
    server: str,
    nth: int,
    error: str = "exception",
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Fail every ``nth`` request the host receives from now on (the nth, 2nth, ...).

    ``nth`` >= 1 (1 fails all). ``error``: "exception", "connection" or
    "timeout" (see inject_failure_rate). ``duration_s`` (default 300) is the
    safety TTL. Returns the created fault.
    """
    return _inject(server, configuration, kind="fail_every", nth=nth, error=error, duration_s=duration_s)


@activity
def inject_delay(
    server: str,
    delay_ms: float,
    max_delay_ms: float = 0.0,
    jitter_ms: float = 0.0,
    rate: float = 1.0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Delay the host's answers before the agent runs.

    ``delay_ms`` (>= 0, ms) is the fixed delay; with ``max_delay_ms`` (ms,
    >= delay_ms) each delay is drawn uniformly in [delay_ms, max_delay_ms];
    with ``jitter_ms`` (ms) it is delay_ms +/- jitter_ms, never below 0 (use
    one of the two; 0 = not used). ``rate`` (0..1) is the fraction of
    requests delayed. Clearing the fault releases requests it is holding.
    ``duration_s`` (default 300) is the safety TTL. Returns the created fault.
    """
    fault: dict[str, Any] = {"delay_ms": delay_ms, "rate": rate, "duration_s": duration_s}
    if max_delay_ms != 0:
        fault["max_delay_ms"] = max_delay_ms
    if jitter_ms != 0:
        fault["jitter_ms"] = jitter_ms
    return _inject(server, configuration, kind="delay", **fault)


@activity
def inject_large_responses(
    server: str,
    size_bytes: int,
    rate: float = 1.0,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Make the host's answers large: ``size_bytes`` of padding in their metadata.

    ``size_bytes`` is 1..16777216 (agenkit's limit for one metadata value);
    the padding sits in ``metadata["chaosagenkit_padding"]`` and the answer's
    content and request_id are kept. Note agenkit's tcp/unix frame limit is
    10 MiB. ``rate`` (0..1) is the fraction of answers padded. ``duration_s``
    (default 300) is the safety TTL. Returns the created fault.
    """
    return _inject(
        server, configuration, kind="large_response", size_bytes=size_bytes, rate=rate, duration_s=duration_s
    )


@activity
def inject_memory_pressure(
    server: str,
    mib: int,
    duration_s: float = DEFAULT_TTL_S,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Make the host allocate and hold ``mib`` MiB (every page touched) until the fault ends.

    Refused when the host's faults would hold more than 90% of the machine's
    available memory. ``duration_s`` (default 300) is how long it is held at
    most. Returns the created fault; the host's /stats shows memory_held_mib.
    """
    return _inject(server, configuration, kind="memory_pressure", mib=mib, duration_s=duration_s)


@activity
def inject_cpu_pressure(
    server: str,
    threads: int = 1,
    duration_s: float = 30.0,
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Keep ``threads`` threads (1..64) busy inside the host for ``duration_s`` seconds.

    The threads hash in a loop with the GIL released, so each takes a CPU
    core from the host the way a busy neighbour would. ``duration_s``
    (default 30) is how long. Returns the created fault.
    """
    return _inject(server, configuration, kind="cpu_pressure", threads=threads, duration_s=duration_s)


@activity
def clear_faults(server: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Remove every fault from the host (releasing held memory and stopping CPU threads).

    Returns the server and the ids of the removed faults.
    """
    removed = operations.clear(server, operations.token_from(configuration))
    return {"server": server, "removed": [f["id"] for f in removed]}


def _inject(server: str, configuration: dict | None, **fault: Any) -> dict[str, Any]:
    require_text(server, "server")
    require_ttl(fault.get("duration_s"), "duration_s")
    created = operations.inject(server, fault, operations.token_from(configuration))
    logger.info(f"chaosagenkit: {created['kind']} fault {created['id']} on '{server}'")
    return created
