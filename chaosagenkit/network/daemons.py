"""Fault proxies for a Chaos Toolkit run: start or find the daemon, declare proxies, tear down.

``chaosagenkit.control`` calls ``start_or_register_daemon`` and
``declare_proxy_from_spec`` before the experiment and ``teardown`` whatever
happens; activities find a proxy's API with ``resolve_proxy``. A daemon is
either a ``chaosagenkit proxy`` child process started here (on an
ephemeral port, with the run's derived seed, ``--exit-with-parent``) or an
external Toxiproxy-compatible API (``url``, or ``toxiproxy_url`` in the
configuration), which may be a real Toxiproxy server. Processes are
started and stopped by ``chaosagenkit.supervisor``, exactly as chaos hosts
are. Teardown never raises before every daemon this run started is stopped.
"""

from __future__ import annotations

import logging
import os
import subprocess
from typing import Any
from urllib.parse import urlsplit

from chaosagenkit import supervisor
from chaosagenkit.api import parse_host_port
from chaosagenkit.control_client import ControlClient, check_control_url, path
from chaosagenkit.credentials import check_token, client_token
from chaosagenkit.exceptions import ConfigurationError, ControlAPIError, TargetError
from chaosagenkit.names import check_name
from chaosagenkit.network import expiry
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

logger = logging.getLogger("chaostoolkit")

START_TIMEOUT_S = 20.0


def start_or_register_daemon(spec: dict[str, Any], configuration: dict[str, Any] | None) -> ProxyDaemonRef:
    """Start ``chaosagenkit proxy`` or register an external API; record it in the SANDBOX.

    ``spec``: ``name`` (default "proxy"), ``url`` (an external API; else
    ``configuration["toxiproxy_url"]``; else a child daemon is started),
    ``listen`` (the child's API address, default 127.0.0.1:0), ``token``
    (else ``configuration["toxiproxy_token"]``, else ``$CHAOSAGENKIT_TOKEN``). An external chaosagenkit
    daemon gets the run's derived seed (``POST /seed``, recorded on the
    timeline as a ``seed`` event), as a started one does on its command line.
    """
    configuration = configuration or {}
    spec = spec or {}
    name = check_name(_text(spec, "name", "proxy"), "proxy.name")
    if name in SANDBOX.proxy_daemons:
        raise ConfigurationError("proxy.name", f"a proxy daemon named {name!r} is already registered")
    token = check_token(_text(spec, "token"), "proxy.token") or client_token(configuration, "toxiproxy_token")
    url = _text(spec, "url") or configuration_url(configuration)
    if url:
        client = ControlClient(url, token, field="proxy.url" if _text(spec, "url") else "toxiproxy_url")
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
        process, ready = start_daemon(
            listen=_text(spec, "listen", "127.0.0.1:0"), seed=seed, token=token, name=name
        )
        ref = ProxyDaemonRef(name=name, url=ready["api"], token=token, process=process)
        SANDBOX.record_event("start", name, pid=process.pid, api=ready["api"], seed=ready["seed"])
    SANDBOX.proxy_daemons[name] = ref
    return ref


def declare_proxy_from_spec(spec: dict[str, Any]) -> ProxyRef:
    """Create a proxy through its daemon's API and record it in the SANDBOX.

    ``spec``: ``name``; ``upstream`` ("server:NAME" for a server of this run,
    "HOST:PORT" or "unix:/PATH"); ``listen`` (default 127.0.0.1:0, or for a
    unix-socket upstream a unix socket beside it, so a unix:// caller can use
    the proxy); ``daemon`` (default: the only daemon). A proxy of that name left on the daemon by an earlier
    run is replaced.
    """
    name = _text(spec, "name")
    if not name:
        raise ConfigurationError("proxies.name", "is missing: every proxy needs a name")
    check_name(name, "proxies.name")
    if name in SANDBOX.proxies:
        raise ConfigurationError("proxies.name", f"proxy {name!r} is declared twice")
    upstream = upstream_address(_text(spec, "upstream"))
    listen = _text(spec, "listen") or _default_listen(name, upstream)
    daemon = _daemon(_text(spec, "daemon"))
    proxy_json = create_proxy(daemon, name, upstream, listen)
    ref = ProxyRef(name=name, daemon=daemon.name, listen=proxy_json["listen"], upstream=upstream)
    SANDBOX.proxies[name] = ref
    return ref


def _default_listen(name: str, upstream: str) -> str:
    """Where a proxy listens when its declaration does not say: TCP on loopback, or a unix
    socket in the upstream socket's directory (the host's own temporary directory)."""
    if upstream.startswith("unix:"):
        return f"unix:{os.path.join(os.path.dirname(upstream.removeprefix('unix:')), f'proxy-{name}.sock')}"
    return "127.0.0.1:0"


def create_proxy(daemon: ProxyDaemonRef, name: str, upstream: str, listen: str) -> dict[str, Any]:
    """POST the proxy (replacing a leftover of the same name); return the API's proxy JSON."""
    client = ControlClient(daemon.url, daemon.token)
    body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
    try:
        return client.post("/proxies", body)
    except ControlAPIError as e:
        if e.status != 409 or "exist" not in e.error:
            raise
    logger.warning(f"chaosagenkit: replacing proxy {name!r} left on {daemon.url} by an earlier run")
    client.delete(path("proxies", name))
    return client.post("/proxies", body)


def teardown() -> None:
    """Delete the run's proxies (their toxics go with them) and stop the daemons it started.

    Idempotent and best-effort: every step runs, whatever an earlier one
    raised, and every daemon this run started is stopped; what failed is
    raised at the end, on one line.
    """
    expiry.cancel_all()
    errors: list[str] = []
    try:
        for ref in list(SANDBOX.proxies.values()):
            try:
                _delete_declared(ref)
            except Exception as e:  # whatever it is, the other proxies and the daemons come next
                errors.append(f"delete proxy {ref.name!r}: {e}")
            SANDBOX.proxies.pop(ref.name, None)
    finally:
        for daemon in list(SANDBOX.proxy_daemons.values()):
            if daemon.process is not None:
                supervisor.stop(daemon.process)
                SANDBOX.record_event("stop", daemon.name, pid=daemon.process.pid)
            SANDBOX.proxy_daemons.pop(daemon.name, None)
    if errors:
        raise TargetError("; ".join(errors))


def _delete_declared(ref: ProxyRef) -> None:
    daemon = SANDBOX.proxy_daemons.get(ref.daemon)
    if not ref.created_by_run or daemon is None or not _reachable(daemon):
        return
    try:
        ControlClient(daemon.url, daemon.token, timeout_s=5.0).delete(path("proxies", ref.name))
    except ControlAPIError as e:
        if e.status != 404:
            raise
    finally:
        SANDBOX.record_event("clear", ref.name)


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
    token = client_token(configuration, "toxiproxy_token")
    daemons = list(SANDBOX.proxy_daemons.values())
    if len(daemons) == 1 and not url:
        return ControlClient(daemons[0].url, daemons[0].token)
    if url:
        return ControlClient(url, token, field="toxiproxy_url")
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
        return check_control_url(
            f"http://{host}:{configuration.get('toxiproxy_port') or 8474}", "toxiproxy_host"
        )
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
    name: str = "proxy",
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``chaosagenkit proxy`` as a child; return it and its ready line (a dict).

    ``name`` names the daemon in errors. Raises ``ProcessStartError`` (with
    the child's stderr tail) when it does not come up.
    """
    parse_host_port(listen, "listen")
    args = ["--listen", listen, "--loop", loop]
    if seed is not None:
        args += ["--seed", str(seed)]
    if config_path:
        args += ["--config", config_path]
    child = supervisor.start(
        "proxy",
        args,
        label=f"proxy daemon {name!r}",
        token=check_token(token, "token"),
        ready_timeout_s=timeout_s,
    )
    return child.process, child.ready


def stop_daemon(process: subprocess.Popen[bytes], timeout_s: float = supervisor.STOP_GRACE_S) -> int:
    """SIGTERM, wait, SIGKILL if needed; always reap. Returns the exit status."""
    return supervisor.stop(process, timeout_s)


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
