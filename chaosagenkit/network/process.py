"""Fault proxies for a Chaos Toolkit run: start or find the daemon, declare proxies, tear down.

``chaosagenkit.control`` calls ``start_or_register_daemon`` and
``declare_proxy_from_spec`` before the experiment and ``teardown`` whatever
happens; activities find a proxy's API with ``resolve_proxy``. A daemon is
either a ``chaosagenkit proxy`` child process started here (on an
ephemeral port, with the run's derived seed, ``--exit-with-parent``) or an
external Toxiproxy-compatible API (``url``, or ``toxiproxy_url`` in the
configuration), which may be a real Toxiproxy server.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from chaosagenkit.api import parse_host_port
from chaosagenkit.exceptions import (
    ConfigurationError,
    ControlAPIError,
    ProcessStartError,
    TargetError,
)
from chaosagenkit.http_client import ControlClient
from chaosagenkit.lifeline import child_environment
from chaosagenkit.network.address import TcpAddress, parse_address
from chaosagenkit.network.proxy import format_address
from chaosagenkit.sandbox import SANDBOX, ProxyDaemonRef, ProxyRef

__all__ = [
    "configuration_url",
    "create_proxy",
    "declare_proxy_from_spec",
    "endpoint_address",
    "is_chaosagenkit_proxy",
    "resolve_api",
    "resolve_proxy",
    "start_daemon",
    "start_or_register_daemon",
    "stop_daemon",
    "teardown",
    "upstream_address",
]

logger = logging.getLogger("chaosagenkit.proxy")

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


def start_or_register_daemon(spec: dict[str, Any], configuration: dict[str, Any] | None) -> ProxyDaemonRef:
    """Start ``chaosagenkit proxy`` or register an external API; record it in the SANDBOX.

    ``spec``: ``name`` (default "proxy"), ``url`` (an external API; else
    ``configuration["toxiproxy_url"]``; else a child daemon is started),
    ``listen`` (the child's API address, default 127.0.0.1:0), ``token``
    (else ``configuration["toxiproxy_token"]``). An external chaosagenkit
    daemon gets the run's derived seed (``POST /seed``, recorded on the
    timeline as a ``seed`` event), as a started one does on its command line.
    """
    configuration = configuration or {}
    spec = spec or {}
    name = _text(spec, "name", "proxy")
    if name in SANDBOX.proxy_daemons:
        raise ConfigurationError("proxy.name", f"a proxy daemon named {name!r} is already registered")
    token = _text(spec, "token") or str(configuration.get("toxiproxy_token") or "") or None
    url = _text(spec, "url") or configuration_url(configuration)
    if url:
        client = ControlClient(url, token)
        try:
            ours = is_chaosagenkit_proxy(client)
        except TargetError as e:
            raise TargetError(f"proxy daemon {name!r}: {e}") from e
        ref = ProxyDaemonRef(name=name, url=client.base_url, token=token)
        seed = SANDBOX.component_seed(f"proxy:{name}")
        if ours and seed is not None:  # the run's seed drives its toxics too (a real Toxiproxy has none)
            client.post("/seed", {"seed": seed})
            SANDBOX.record_event("seed", name, api=client.base_url, seed=seed)
    else:
        seed = SANDBOX.component_seed(f"proxy:{name}")
        process, ready = start_daemon(listen=_text(spec, "listen", "127.0.0.1:0"), seed=seed, token=token)
        ref = ProxyDaemonRef(name=name, url=ready["api"], token=token, process=process)
        SANDBOX.record_event("start", name, pid=process.pid, api=ready["api"], seed=ready["seed"])
    SANDBOX.proxy_daemons[name] = ref
    return ref


def declare_proxy_from_spec(spec: dict[str, Any]) -> ProxyRef:
    """Create a proxy through its daemon's API and record it in the SANDBOX.

    ``spec``: ``name``; ``upstream`` ("server:NAME" for a server of this run,
    or "HOST:PORT"); ``listen`` (default 127.0.0.1:0); ``daemon`` (default:
    the only daemon). A proxy of that name left on the daemon by an earlier
    run is replaced.
    """
    name = _text(spec, "name")
    if not name:
        raise ConfigurationError("proxies.name", "is missing: every proxy needs a name")
    if name in SANDBOX.proxies:
        raise ConfigurationError("proxies.name", f"proxy {name!r} is declared twice")
    upstream = upstream_address(_text(spec, "upstream"))
    listen = _text(spec, "listen", "127.0.0.1:0")
    daemon = _daemon(_text(spec, "daemon"))
    proxy_json = create_proxy(daemon, name, upstream, listen)
    ref = ProxyRef(name=name, daemon=daemon.name, listen=proxy_json["listen"], upstream=upstream)
    SANDBOX.proxies[name] = ref
    return ref


def create_proxy(daemon: ProxyDaemonRef, name: str, upstream: str, listen: str) -> dict[str, Any]:
    """POST the proxy (replacing a leftover of the same name); return the API's proxy JSON."""
    client = ControlClient(daemon.url, daemon.token)
    body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
    try:
        return client.post("/proxies", body)
    except ControlAPIError as e:
        if e.status != 409 or "exist" not in e.error:
            raise
    logger.warning("replacing proxy %r left on %s by an earlier run", name, daemon.url)
    client.delete(f"/proxies/{name}")
    return client.post("/proxies", body)


def teardown() -> None:
    """Delete the run's proxies (their toxics go with them) and stop the daemons it started.

    Idempotent and best-effort: every step runs; the first error is raised at the end.
    """
    from chaosagenkit.network.operations import cancel_timers  # it imports this module

    cancel_timers()
    errors: list[str] = []
    for ref in list(SANDBOX.proxies.values()):
        daemon = SANDBOX.proxy_daemons.get(ref.daemon)
        if ref.created_by_run and daemon is not None and _reachable(daemon):
            try:
                ControlClient(daemon.url, daemon.token, timeout_s=5.0).delete(f"/proxies/{ref.name}")
            except ControlAPIError as e:
                if e.status != 404:
                    errors.append(f"delete proxy {ref.name}: {e}")
            except TargetError as e:
                errors.append(f"delete proxy {ref.name}: {e}")
            SANDBOX.record_event("clear", ref.name)
        SANDBOX.proxies.pop(ref.name, None)
    for daemon in list(SANDBOX.proxy_daemons.values()):
        if daemon.process is not None:
            stop_daemon(daemon.process)
            SANDBOX.record_event("stop", daemon.name, pid=daemon.process.pid)
        SANDBOX.proxy_daemons.pop(daemon.name, None)
    if errors:
        raise TargetError("; ".join(errors))


def resolve_proxy(name: str, configuration: dict[str, Any] | None) -> tuple[ControlClient, str]:
    """The API client serving proxy ``name``: the run's proxy first, else configuration."""
    ref = SANDBOX.proxies.get(name)
    if ref is not None:
        daemon = SANDBOX.proxy_daemons.get(ref.daemon)
        if daemon is not None:
            return ControlClient(daemon.url, daemon.token), name
    return resolve_api(configuration), name


def resolve_api(configuration: dict[str, Any] | None) -> ControlClient:
    """The proxy API of this run: its only daemon, else ``toxiproxy_url`` from configuration."""
    configuration = configuration or {}
    url = configuration_url(configuration)
    token = str(configuration.get("toxiproxy_token") or "") or None
    daemons = list(SANDBOX.proxy_daemons.values())
    if len(daemons) == 1 and not url:
        return ControlClient(daemons[0].url, daemons[0].token)
    if url:
        return ControlClient(url, token)
    if daemons:
        names = ", ".join(sorted(SANDBOX.proxy_daemons))
        raise ConfigurationError("proxy", f"is ambiguous: this run has several proxy daemons ({names})")
    raise ConfigurationError(
        "toxiproxy_url",
        "is not set and this run started no proxy daemon: declare a proxy in the "
        "chaosagenkit control or set configuration toxiproxy_url",
    )


def configuration_url(configuration: dict[str, Any]) -> str:
    """``toxiproxy_url``, or ``toxiproxy_host``/``toxiproxy_port`` as chaostoolkit-toxiproxy reads them."""
    url = str(configuration.get("toxiproxy_url") or "").strip()
    if url:
        return url
    host = str(configuration.get("toxiproxy_host") or "").strip()
    if host:
        return f"http://{host}:{configuration.get('toxiproxy_port') or 8474}"
    return ""


def is_chaosagenkit_proxy(client: ControlClient) -> bool:
    """True when the API is chaosagenkit's proxy, not another Toxiproxy server.

    Asked every time (one local GET): an address may serve something else later.
    """
    version = client.get("/version")
    return isinstance(version, dict) and version.get("implementation") == "chaosagenkit"


def endpoint_address(endpoint: str) -> str:
    """The proxy address of an agenkit endpoint: ``HOST:PORT`` (tcp://, http://, ws://,
    h2c://, grpc://...) or ``unix:/PATH`` (unix:///PATH)."""
    parts = urlsplit(endpoint)
    if parts.scheme == "unix":
        return str(parse_address(endpoint, "upstream"))
    if not parts.hostname or parts.port is None:
        raise ConfigurationError(
            "upstream", f"endpoint {endpoint!r} has no TCP host and port (a proxy needs one)"
        )
    return format_address(parts.hostname, parts.port)


# -- the daemon process ----------------------------------------------------------------
def start_daemon(
    *,
    listen: str = "127.0.0.1:0",
    seed: int | None = None,
    token: str | None = None,
    config_path: str | None = None,
    loop: str = "auto",
    timeout_s: float = START_TIMEOUT_S,
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``chaosagenkit proxy`` as a child; return it and its ready line (a dict)."""
    parse_host_port(listen, "listen")
    argv = [
        sys.executable,
        "-m",
        "chaosagenkit",
        "proxy",
        "--listen",
        listen,
        "--exit-with-parent",
        "--loop",
        loop,
    ]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if config_path:
        argv += ["--config", config_path]
    env = child_environment(dict(os.environ))  # --exit-with-parent even if we die while it starts
    env.pop("CHAOSAGENKIT_PROXY_TOKEN", None)
    if token:
        env["CHAOSAGENKIT_PROXY_TOKEN"] = token  # not on the command line, where ps shows it
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stderr_tail = _drain(process)
    try:
        ready = _read_ready_line(process, timeout_s)
    except BaseException:
        stop_daemon(process)
        raise ProcessStartError(
            f"chaosagenkit proxy did not start: {' | '.join(stderr_tail) or 'no output'}"
        ) from None
    return process, ready


def stop_daemon(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, wait, SIGKILL if needed; always reap."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _read_ready_line(process: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProcessStartError(f"no ready line within {timeout_s:g} s")
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise ProcessStartError(f"exited with status {process.wait()}")
            buffer += chunk
    ready = json.loads(buffer.split(b"\n", 1)[0])
    if ready.get("event") != "ready":
        raise ProcessStartError(f"unexpected first line {ready!r}")
    return ready


def _drain(process: subprocess.Popen[bytes]) -> collections.deque[str]:
    """Read the child's stderr in a thread (so it never blocks); keep the last lines."""
    tail: collections.deque[str] = collections.deque(maxlen=20)

    def pump() -> None:
        assert process.stderr is not None
        with process.stderr:
            for raw in process.stderr:
                line = raw.decode(errors="replace").rstrip()
                tail.append(line)
                logger.debug("proxy[%d]: %s", process.pid, line)

    threading.Thread(target=pump, name=f"proxy-stderr-{process.pid}", daemon=True).start()
    return tail


# -- spec helpers ------------------------------------------------------------------------
def _text(spec: dict[str, Any], key: str, default: str = "") -> str:
    value = spec.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConfigurationError(key, f"must be a string, got {value!r}")
    return value.strip() or default


def upstream_address(upstream: str) -> str:
    """The address of an upstream given as "server:NAME" (a server of this run), "HOST:PORT"
    or "unix:/PATH"."""
    if not upstream:
        raise ConfigurationError("upstream", "is missing: give 'server:NAME', 'HOST:PORT' or 'unix:/PATH'")
    if upstream.startswith("server:"):
        server_name = upstream.removeprefix("server:")
        server = SANDBOX.servers.get(server_name)
        if server is None:
            known = ", ".join(sorted(SANDBOX.servers)) or "none"
            raise ConfigurationError("upstream", f"names unknown server {server_name!r} (known: {known})")
        return endpoint_address(server.endpoint)
    address = parse_address(upstream, "upstream")
    if isinstance(address, TcpAddress) and address.port == 0:
        raise ConfigurationError("upstream", f"needs a port between 1 and 65535, got {upstream!r}")
    return str(address)


def _reachable(daemon: ProxyDaemonRef) -> bool:
    """False for a daemon this run started that has already exited (nothing to delete)."""
    return daemon.process is None or daemon.process.poll() is None


def _daemon(name: str) -> ProxyDaemonRef:
    if name:
        daemon = SANDBOX.proxy_daemons.get(name)
        if daemon is None:
            known = ", ".join(sorted(SANDBOX.proxy_daemons)) or "none"
            raise ConfigurationError("daemon", f"names unknown proxy daemon {name!r} (known: {known})")
        return daemon
    daemons = list(SANDBOX.proxy_daemons.values())
    if len(daemons) != 1:
        raise ConfigurationError("daemon", f"must be given: this run has {len(daemons)} proxy daemons")
    return daemons[0]
