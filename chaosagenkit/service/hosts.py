"""Chaos hosts as child processes of the chaos run, registered in ``SANDBOX.servers``.

``start_server`` runs ``python -m chaosagenkit serve ... --exit-with-parent``
and waits for its ready line; ``start_or_register`` is what
``chaosagenkit.control`` calls for each server an experiment declares (or
registers a host running elsewhere by its control URL); the teardown pair
``clear_all_faults`` / ``stop_started_servers`` is idempotent and never
raises for a host that is already gone. Hosts an action faulted by control
URL alone (``remember_fault_host``) have their faults cleared at teardown
too, and are never stopped.

Rules kept here:

- Processes are started, stopped and killed by ``chaosagenkit.supervisor``
  (ready line, stderr tail, token in the environment, Ctrl-C, exit with
  the run): a host behaves there exactly as the fault proxy does.
- A restart reuses the ports (and unix socket) the first start bound, so
  clients reconnect to the same address.
- A unix socket gets a fresh private directory. The run removes it when it
  forgets the host; the host itself removes it if the run dies first
  (``--own-socket-dir``), so no directory outlives a killed run.
- Names follow ``chaosagenkit.names``; control URLs are checked by
  ``chaosagenkit.control_client``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaosagenkit import supervisor
from chaosagenkit.activity import seed_or_none
from chaosagenkit.api import parse_host_port
from chaosagenkit.control_client import ControlClient, NotAControlAPI, check_control_url
from chaosagenkit.credentials import check_token, client_token
from chaosagenkit.exceptions import ConfigurationError, TargetError
from chaosagenkit.names import check_name
from chaosagenkit.sandbox import SANDBOX, ServerRef
from chaosagenkit.service.endpoint import SCHEMES, default_endpoint, parse_endpoint
from chaosagenkit.validation import require_known_keys

__all__ = [
    "PLACEMENTS",
    "SERVER_SPEC_KEYS",
    "TOKEN_CONFIG_KEY",
    "Placement",
    "clear_all_faults",
    "client_for",
    "forget_server",
    "is_alive",
    "register_external",
    "remember_fault_host",
    "resolve_server",
    "restart_server",
    "start_or_register",
    "start_server",
    "stop_server",
    "stop_started_servers",
    "token_from",
]

logger = logging.getLogger("chaostoolkit")

#: Keys a server declaration in the control's ``servers`` list may use.
SERVER_SPEC_KEYS = (
    "name",
    "agent",
    "transport",
    "endpoint",
    "control",
    "token",
    "seed",
    "env",
    "http_default_middleware",
    "control_url",
    "namespace",
)
#: Configuration key holding the token of hosts this run did not start.
TOKEN_CONFIG_KEY = "chaosagenkit_server_token"

_lock = threading.RLock()


@dataclass
class _Started:
    """What this module keeps about a host it started, beside its ServerRef."""

    child: supervisor.Child
    args: list[str]  # serve's arguments, ports pinned after the first start
    unix_dir: str | None = None
    seed: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    placement: Placement | None = None


_started: dict[str, _Started] = {}


# -- placement hook (chaosagenkit.kernel, chaosagenkit.topology) ----------------


@dataclass(frozen=True)
class Placement:
    """Where a host runs when not beside the chaos process: a network namespace of the run.

    Registered in ``PLACEMENTS`` by whoever built the namespace (the kernel
    ``network`` of the control, or the run's topology); a server declaration
    picks one by name (``"namespace"``).
    """

    command_prefix: tuple[str, ...]  # ("ip", "netns", "exec", NAME): execs serve in place
    host: str  # the default endpoint's host: an address the callers reach
    reach_control: Callable[[str], str]  # the ready line's control URL -> one this process reaches


#: Placements by the name a server declaration gives as ``namespace``.
PLACEMENTS: dict[str, Placement] = {}


# -- start ---------------------------------------------------------------------


def start_server(
    name: str,
    agent: str = "chaosagenkit.targets:echo",
    endpoint: str = "tcp://127.0.0.1:0",
    *,
    control: str = "127.0.0.1:0",
    token: str | None = None,
    seed: int | None = None,
    env: dict[str, str] | None = None,
    http_default_middleware: bool = True,
    ready_timeout_s: float = supervisor.READY_TIMEOUT_S,
    placement: Placement | None = None,
) -> ServerRef:
    """Start ``chaosagenkit serve`` for ``agent`` on ``endpoint``; register it as ``name``.

    Returns once the host has printed its ready line. Raises
    ``ConfigurationError`` for bad arguments (nothing started) and
    ``ProcessStartError`` (with the child's stderr tail) when it exits or
    stays silent for ``ready_timeout_s`` seconds.
    """
    return _start(
        name,
        agent,
        endpoint,
        control,
        token,
        seed,
        env,
        http_default_middleware,
        ready_timeout_s,
        placement=placement,
    )


def start_or_register(spec: dict[str, Any]) -> ServerRef:
    """Start (or, with ``control_url``, register) the server an experiment declares."""
    if not isinstance(spec, dict):
        raise ConfigurationError("servers", f"entries must be objects, got {spec!r}")
    require_known_keys(spec, SERVER_SPEC_KEYS, "a server field")
    name = check_name(spec.get("name"), "name")
    token = check_token(spec.get("token"), "token")
    if spec.get("control_url"):
        return register_external(name, spec["control_url"], token=token)
    transport = spec.get("transport") or "tcp"
    if transport not in SCHEMES:
        raise ConfigurationError("transport", f"must be one of {', '.join(SCHEMES)}, got {transport!r}")
    placement = _placement(spec.get("namespace"))
    if placement is not None and transport == "unix":
        raise ConfigurationError(
            "transport", "unix sockets do not cross a network namespace's link; use tcp or http"
        )
    seed = _seed(spec.get("seed"), name)
    env = _expand_env(spec.get("env") or {})
    middleware = _flag(spec.get("http_default_middleware", True), "http_default_middleware")
    unix_dir = None
    endpoint = spec.get("endpoint") or ""
    if not endpoint:
        if transport == "unix":
            unix_dir = tempfile.mkdtemp(prefix="chaosagenkit-")
        endpoint = default_endpoint(transport, unix_dir or "")
        if placement is not None:
            endpoint = endpoint.replace("127.0.0.1", placement.host, 1)
    try:
        return _start(
            name,
            spec.get("agent") or "chaosagenkit.targets:echo",
            endpoint,
            spec.get("control") or "127.0.0.1:0",
            token,
            seed,
            env,
            middleware,
            supervisor.READY_TIMEOUT_S,
            unix_dir=unix_dir,
            placement=placement,
        )
    except BaseException:
        if unix_dir:
            shutil.rmtree(unix_dir, ignore_errors=True)
        raise


def register_external(name: str, control_url: str, *, token: str | None = None) -> ServerRef:
    """Register a chaos host running elsewhere, from its ``GET /health``; start nothing."""
    ref = _external_ref(check_name(name, "name"), control_url, token, "control_url")
    with _lock:
        SANDBOX.servers[name] = ref
    return ref


# -- lookup --------------------------------------------------------------------


def resolve_server(server: str, token: str | None = None) -> ServerRef:
    """A server of this run by name, or a host elsewhere by its control URL.

    For a URL not registered in this run, ``token`` (else the run's
    configuration ``chaosagenkit_server_token``) authenticates its GET /health.
    """
    if isinstance(server, str) and server.startswith(("http://", "https://")):
        url = check_control_url(server, "server")
        with _lock:
            for known in SANDBOX.servers.values():
                if known.control_url == url:
                    return known
        return _external_ref(url, url, token, "server")
    check_name(server, "server")
    with _lock:
        ref = SANDBOX.servers.get(server)
        if ref is not None:
            return ref
        known_names = ", ".join(sorted(SANDBOX.servers)) or "none"
    raise ConfigurationError(
        "server",
        f"must be a server started in this run (known: {known_names}) "
        f"or a control URL like http://127.0.0.1:PORT, got {server!r}",
    )


def token_from(configuration: dict[str, Any] | None) -> str | None:
    """The token of hosts this run did not start: ``chaosagenkit_server_token``, else ``$CHAOSAGENKIT_TOKEN``."""
    return client_token(configuration, TOKEN_CONFIG_KEY)


def _external_ref(name: str, control_url: str, token: str | None, field_name: str) -> ServerRef:
    """A ServerRef for a host elsewhere, from its ``GET /health`` (token: given, else the run's).

    Refuses, as a configuration error, a URL whose answer is not a chaosagenkit
    control API's health (an agent's port, another web server).
    """
    client = ControlClient(control_url, token or token_from(SANDBOX.configuration), field=field_name)
    url, token = client.base_url, client.token
    try:
        health = client.get("/health")
    except NotAControlAPI as e:
        raise ConfigurationError(field_name, f"{url} is not a chaosagenkit control API: {e}") from e
    if not isinstance(health, dict) or not isinstance(health.get("endpoint"), str):
        raise ConfigurationError(
            field_name, f"{url} is not a chaosagenkit control API: GET /health answered {health!r:.100}"
        )
    return ServerRef(name=name, endpoint=health["endpoint"], control_url=url, token=token)


def client_for(ref: ServerRef, timeout_s: float = 10.0) -> ControlClient:
    return ControlClient(ref.control_url, ref.token, timeout_s=timeout_s)


def is_alive(ref: ServerRef) -> bool:
    """True while the process this run started runs (external hosts: answers /health)."""
    if ref.process is not None:
        return ref.process.poll() is None
    try:
        client_for(ref, timeout_s=3.0).get("/health")
    except TargetError:
        return False
    return True


# -- restart and stop ----------------------------------------------------------


def restart_server(name: str, ready_timeout_s: float = supervisor.READY_TIMEOUT_S) -> ServerRef:
    """Stop ``name`` if alive, then start it again on the same endpoint and control port."""
    with _lock:
        ref = _started_ref(name)
        started = _started[name]
        was_alive = is_alive(ref)
        started.child.stop()
        new = _launch(
            name,
            started.args,
            ref.token,
            started.extra_env,
            started.seed,
            ready_timeout_s,
            started.unix_dir,
            placement=started.placement,
        )
        SANDBOX.record_event(
            "restart",
            name,
            endpoint=new.endpoint,
            was_alive=was_alive,
            pid=new.process.pid if new.process else None,
        )
        return new


def stop_server(name: str) -> int | None:
    """Stop ``name`` (SIGTERM, then SIGKILL); return its exit code (None if it never ran here)."""
    with _lock:
        ref = _started_ref(name)
        if ref.process is None or ref.process.poll() is not None:
            return None if ref.process is None else ref.process.returncode
        code = supervisor.stop(ref.process)
        SANDBOX.record_event("stop", name, exit_code=code)
        return code


def remember_fault_host(ref: ServerRef) -> None:
    """Note a host faulted by control URL only (not a server of this run), for teardown."""
    with _lock:
        if SANDBOX.servers.get(ref.name) is not ref:
            SANDBOX.fault_hosts.setdefault(ref.control_url, ref)


def clear_all_faults() -> dict[str, int]:
    """DELETE /faults on every known server and every host faulted by URL.

    Dead, unreachable or strangely answering hosts are skipped (logged), and
    the others are still cleared. Returns the number of faults removed per host.
    """
    cleared: dict[str, int] = {}
    with _lock:
        refs = list(SANDBOX.servers.values())
        known_urls = {ref.control_url for ref in refs}
        refs += [ref for url, ref in SANDBOX.fault_hosts.items() if url not in known_urls]
    for ref in refs:
        if ref.process is not None and ref.process.poll() is not None:
            continue
        try:
            answer = client_for(ref, timeout_s=5.0).delete("/faults")
            removed = [f["id"] for f in answer["removed"]]
        except TargetError as e:  # gone or unreachable: nothing to clear there
            logger.debug(f"chaosagenkit: cannot clear faults on {ref.name}: {e}")
            continue
        except Exception as e:
            logger.warning(f"chaosagenkit: cannot clear faults on {ref.name}: {type(e).__name__}: {e}")
            continue
        cleared[ref.name] = len(removed)
        if removed:
            SANDBOX.record_event("clear", ref.name, fault_id=None, removed=removed)
    return cleared


def forget_server(name: str) -> bool:
    """Stop ``name`` if this run started it, then forget it (socket dir, registry entry).

    Returns True when a running process was stopped. Unknown names are ignored.
    """
    with _lock:
        ref = SANDBOX.servers.pop(name, None)
        stopped = False
        if ref is not None and ref.process is not None and ref.process.poll() is None:
            code = supervisor.stop(ref.process)
            SANDBOX.record_event("stop", name, exit_code=code)
            stopped = True
        started = _started.pop(name, None)
        if started is not None and started.unix_dir:
            shutil.rmtree(started.unix_dir, ignore_errors=True)
        return stopped


def stop_started_servers() -> list[str]:
    """Stop every host this run started and forget every server. Returns the names stopped.

    Hosts faulted by URL only are forgotten, never stopped: this run did not start them.
    """
    with _lock:
        SANDBOX.fault_hosts.clear()
        return [name for name in list(SANDBOX.servers) if forget_server(name)]


# -- helpers -------------------------------------------------------------------


def _start(
    name: str,
    agent: str,
    endpoint: str,
    control: str,
    token: str | None,
    seed: int | None,
    env: dict[str, str] | None,
    http_default_middleware: bool,
    ready_timeout_s: float,
    unix_dir: str | None = None,
    placement: Placement | None = None,
) -> ServerRef:
    """Start a host; ``unix_dir`` is the private socket directory made for it, if any."""
    check_name(name, "name")
    token = check_token(token, "token")
    parse_endpoint(endpoint)
    parse_host_port(control, "control")
    args = ["--agent", agent, "--endpoint", endpoint, "--control", control]
    if seed is not None:
        args += ["--seed", str(seed)]
    if not http_default_middleware:
        args.append("--no-http-default-middleware")
    if unix_dir:
        args.append("--own-socket-dir")
    with _lock:
        existing = SANDBOX.servers.get(name)
        if existing is not None and is_alive(existing):
            raise ConfigurationError("name", f"a server named {name!r} is already running")
        previous = _started.pop(name, None)
        if previous is not None and previous.unix_dir:  # a host of that name that died
            shutil.rmtree(previous.unix_dir, ignore_errors=True)
        ref = _launch(name, args, token, dict(env or {}), seed, ready_timeout_s, unix_dir, placement)
        SANDBOX.record_event(
            "start",
            name,
            endpoint=ref.endpoint,
            control=ref.control_url,
            pid=ref.process.pid if ref.process else None,
            seed=seed,
        )
        return ref


def _launch(
    name: str,
    args: list[str],
    token: str | None,
    extra_env: dict[str, str],
    seed: int | None,
    ready_timeout_s: float,
    unix_dir: str | None,
    placement: Placement | None = None,
) -> ServerRef:
    child = supervisor.start(
        "serve",
        args,
        label=f"server {name!r}",
        token=token,
        env=extra_env,
        ready_timeout_s=ready_timeout_s,
        prefix=placement.command_prefix if placement else (),
    )
    # Restarts must come back on the same addresses: pin the ports bound this time.
    pinned = _pin(args, "--endpoint", child.ready["endpoint"])
    pinned = _pin(pinned, "--control", child.ready["control"].removeprefix("http://"))
    ref = ServerRef(
        name=name,
        endpoint=child.ready["endpoint"],
        control_url=placement.reach_control(child.ready["control"]) if placement else child.ready["control"],
        token=token,
        process=child.process,
        argv=child.argv,
    )
    _started[name] = _Started(
        child=child, args=pinned, unix_dir=unix_dir, seed=seed, extra_env=extra_env, placement=placement
    )
    SANDBOX.servers[name] = ref
    return ref


def _pin(args: list[str], option: str, value: str) -> list[str]:
    pinned = list(args)
    pinned[pinned.index(option) + 1] = value
    return pinned


def _started_ref(name: str) -> ServerRef:
    ref = SANDBOX.servers.get(name)
    if ref is None or ref.process is None or name not in _started:
        started = ", ".join(n for n, r in SANDBOX.servers.items() if r.process is not None) or "none"
        raise ConfigurationError(
            "name", f"must be a server this run started (started: {started}), got {name!r:.80}"
        )
    return ref


def _seed(value: Any, name: str) -> int | None:
    seed = seed_or_none(value)
    return SANDBOX.component_seed(f"server:{name}") if seed is None else seed


def _placement(namespace: Any) -> Placement | None:
    if namespace in (None, ""):
        return None
    if namespace not in PLACEMENTS:
        known = (
            ", ".join(sorted(PLACEMENTS)) or "none: declare a kernel `network` or a topology in the control"
        )
        raise ConfigurationError(
            "namespace", f"must be a namespace of the run's network ({known}), got {namespace!r}"
        )
    return PLACEMENTS[namespace]


def _flag(value: Any, field_name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigurationError(field_name, f"must be true or false, got {value!r}")


def _expand_env(env: Any) -> dict[str, str]:
    """Replace ``{server:NAME}`` in values with that started server's agent endpoint, ``{llm:NAME}`` with
    that LLM endpoint's base URL."""
    if not isinstance(env, dict):
        raise ConfigurationError("env", f"must be an object of NAME: value, got {env!r}")
    expanded = {}
    for key, value in env.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigurationError(f"env.{key}", f"must be a string or a number, got {value!r}")
        text = str(value)
        while "{server:" in text:
            start = text.index("{server:")
            end = text.find("}", start)
            if end < 0:
                raise ConfigurationError(f"env.{key}", f"has an unclosed {{server:NAME}}: {text!r}")
            target = text[start + len("{server:") : end]
            ref = SANDBOX.servers.get(target)
            if ref is None:
                known = ", ".join(sorted(SANDBOX.servers)) or "none"
                raise ConfigurationError(
                    f"env.{key}", f"refers to server {target!r}, which is not started yet (started: {known})"
                )
            text = text[:start] + ref.endpoint + text[end + 1 :]
        while "{llm:" in text:  # an LLM fault endpoint's base URL (chaosagenkit.llm)
            start = text.index("{llm:")
            end = text.find("}", start)
            if end < 0:
                raise ConfigurationError(f"env.{key}", f"has an unclosed {{llm:NAME}}: {text!r}")
            # Imported on use: ~80 ms of imports only this path needs.
            from chaosagenkit.llm.process import base_url_of

            text = text[:start] + base_url_of(text[start + len("{llm:") : end]) + text[end + 1 :]
        expanded[str(key)] = text
    return expanded
