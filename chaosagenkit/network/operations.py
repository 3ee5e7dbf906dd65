"""What the network activities do, against chaosagenkit's proxy or a real Toxiproxy.

Rules kept here, once:

- Everything is checked before anything changes: arguments, toxic
  attributes (validated locally with the same config classes the proxy
  uses), the proxy's API, and whether that API can do what is asked.
  Toxiproxy's own toxics use nothing but Toxiproxy's API; our extras
  (packet_loss, frame toxics, stats) need chaosagenkit's proxy and fail
  with one clear line against a server that lacks them.
- Every fault goes on the run's timeline: "inject" (kind = toxic type,
  id = toxic name, duration_s), "clear", "disable", "enable".
- A fault with ``duration_s`` expires by itself: our daemon removes the
  toxic, or enables the disabled proxy, itself (even if this process dies);
  against another server (a real Toxiproxy has no expiry) a timer of
  ``chaosagenkit.network.expiry`` does it.
- Every name is checked with ``chaosagenkit.names`` before anything is sent,
  and goes into URLs escaped (``control_client.path``).
"""

from __future__ import annotations

import logging
from typing import Any

from chaosagenkit.activity import require_choice, require_probability, require_text, require_ttl
from chaosagenkit.control_client import ControlClient, path
from chaosagenkit.exceptions import ControlAPIError, TargetError
from chaosagenkit.faults.toxics import EXTENSION_TYPES, build_toxic
from chaosagenkit.names import check_name
from chaosagenkit.network import daemons, expiry
from chaosagenkit.network.proxy import STREAMS
from chaosagenkit.sandbox import SANDBOX, ProxyDaemonRef, ProxyRef

__all__ = [
    "check_common",
    "create_proxy",
    "delete_proxy",
    "impacted_by_client_evidence",
    "inject_toxic",
    "read_stats",
    "read_toxics",
    "remove_toxic",
    "reset_all",
    "set_enabled",
    "toxic_acted",
    "toxic_impacted",
]

logger = logging.getLogger("chaostoolkit")


def check_common(proxy: str, stream: str, toxicity: float, duration_s: float, name: str) -> None:
    """The arguments every injecting activity shares (``name`` "" means the default name)."""
    check_name(proxy, "proxy")
    require_choice(stream, "stream", STREAMS)
    require_probability(toxicity, "toxicity")
    require_ttl(duration_s, "duration_s")
    if name != "":
        check_name(name, "name")


def inject_toxic(
    proxy: str,
    toxic_type: str,
    attributes: dict[str, Any] | None,
    *,
    stream: str = "downstream",
    toxicity: float = 1.0,
    duration_s: float = 0.0,
    name: str = "",
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add a toxic to ``proxy``; return the toxic as the API shows it."""
    check_common(proxy, stream, toxicity, duration_s, name)
    toxic = build_toxic(toxic_type, attributes)
    try:
        return _inject(proxy, toxic_type, toxic, stream, toxicity, duration_s, name, configuration)
    except TargetError as e:
        # the fault is not in the traffic: the control ends the run "failed", not "deviated"
        SANDBOX.not_injected.append(f"{toxic_type} on {proxy}: {e}")
        raise


def _inject(
    proxy: str,
    toxic_type: str,
    toxic: Any,
    stream: str,
    toxicity: float,
    duration_s: float,
    name: str,
    configuration: dict[str, Any] | None,
) -> dict[str, Any]:
    client, proxy_name = daemons.resolve_proxy(proxy, configuration)
    ours = daemons.is_chaosagenkit_proxy(client)
    if toxic_type in EXTENSION_TYPES and not ours:
        raise TargetError(
            f"toxic type {toxic_type!r} needs chaosagenkit's proxy, and {client.base_url} "
            "is another Toxiproxy-compatible server (it only has Toxiproxy's toxics)"
        )
    body: dict[str, Any] = {
        "name": name or f"{toxic_type}_{stream}",
        "type": toxic_type,
        "stream": stream,
        "toxicity": float(toxicity),
        "attributes": toxic.config.to_attributes(),
    }
    if duration_s and ours:
        body["duration_s"] = float(duration_s)
    created = client.post(path("proxies", proxy_name, "toxics"), body)
    toxic_name = created.get("name", body["name"]) if isinstance(created, dict) else body["name"]
    if duration_s and not ours:
        key = (client.base_url, proxy_name, toxic_name)
        expiry.later(key, duration_s, _remove_quietly, client, proxy_name, toxic_name)
    SANDBOX.record_event(
        "inject",
        proxy_name,
        kind=toxic_type,
        fault_id=toxic_name,
        duration_s=float(duration_s) if duration_s else None,
        stream=stream,
        toxicity=float(toxicity),
        attributes=body["attributes"],
    )
    logger.info(f"proxy {proxy_name}: injected {toxic_type} {toxic_name} {body['attributes']}")
    return created


def remove_toxic(proxy: str, name: str, configuration: dict[str, Any] | None = None) -> bool:
    """Remove toxic ``name``; True if it was there, False if it had already gone (expired)."""
    check_name(proxy, "proxy")
    check_name(name, "name")
    client, proxy_name = daemons.resolve_proxy(proxy, configuration)
    try:
        client.delete(path("proxies", proxy_name, "toxics", name))
        removed = True
    except ControlAPIError as e:
        if e.status != 404 or "toxic" not in e.error:
            raise
        removed = False
    expiry.cancel((client.base_url, proxy_name, name))
    SANDBOX.record_event("clear", proxy_name, fault_id=name)
    return removed


def create_proxy(
    name: str, upstream: str, listen: str, configuration: dict[str, Any] | None
) -> dict[str, Any]:
    """Create a proxy on the run's proxy API; the run deletes it at teardown."""
    check_name(name, "name")
    require_text(upstream, "upstream")
    require_text(listen, "listen")
    address = daemons.upstream_address(upstream)
    client = daemons.resolve_api(configuration)
    daemon = _daemon_for(client)
    created = daemons.create_proxy(daemon, name, address, listen)
    SANDBOX.proxies[name] = ProxyRef(
        name=name, daemon=daemon.name, listen=created["listen"], upstream=address
    )
    return created


def delete_proxy(name: str, configuration: dict[str, Any] | None) -> None:
    check_name(name, "name")
    client, proxy_name = daemons.resolve_proxy(name, configuration)
    client.delete(path("proxies", proxy_name))
    expiry.cancel_api(client.base_url, proxy_name)
    SANDBOX.proxies.pop(name, None)
    SANDBOX.record_event("clear", proxy_name)


def set_enabled(
    name: str, enabled: bool, duration_s: float, configuration: dict[str, Any] | None
) -> dict[str, Any]:
    """Take a proxy down (or up); a down proxy comes back up by itself after ``duration_s``."""
    check_name(name, "name")
    if not enabled:  # bringing a proxy up has no duration
        require_ttl(duration_s, "duration_s")
    client, proxy_name = daemons.resolve_proxy(name, configuration)
    key = (client.base_url, proxy_name, "")  # an earlier disable's timer: replaced or cancelled
    if enabled:
        result = client.post(path("proxies", proxy_name), {"enabled": True})  # our daemon cancels its own
        expiry.cancel(key)
        SANDBOX.record_event("enable", proxy_name)
        return result
    ours = daemons.is_chaosagenkit_proxy(client)
    body: dict[str, Any] = {"enabled": False}
    if ours:
        body["duration_s"] = float(duration_s)  # the daemon enables it again, even if this process dies
    result = client.post(path("proxies", proxy_name), body)
    SANDBOX.record_event("disable", proxy_name, kind="proxy_down", duration_s=float(duration_s))
    if ours:
        expiry.cancel(key)
    else:
        expiry.later(key, duration_s, _enable_quietly, client, proxy_name)
    return result


def reset_all(configuration: dict[str, Any] | None) -> None:
    """Toxiproxy's /reset on the run's API: every proxy enabled, every toxic removed.

    The timeline gets a ``clear`` for every proxy the API lists, and an
    ``enable`` for each that was down, so the report closes their windows.
    """
    client = daemons.resolve_api(configuration)
    proxies = client.get("/proxies")
    proxies = proxies if isinstance(proxies, dict) else {}
    client.post("/reset")
    expiry.cancel_api(client.base_url)
    for proxy_name, proxy in proxies.items():
        SANDBOX.record_event("clear", proxy_name)
        if isinstance(proxy, dict) and proxy.get("enabled") is False:
            SANDBOX.record_event("enable", proxy_name)


def read_stats(proxy: str, configuration: dict[str, Any] | None) -> dict[str, Any]:
    """Our counters for ``proxy`` (chaosagenkit's proxy only)."""
    check_name(proxy, "proxy")
    client, proxy_name = daemons.resolve_proxy(proxy, configuration)
    if not daemons.is_chaosagenkit_proxy(client):
        raise TargetError(
            f"traffic counters need chaosagenkit's proxy, and {client.base_url} is another "
            "Toxiproxy-compatible server (it keeps none)"
        )
    return client.get(path("proxies", proxy_name, "stats"))


def read_toxics(proxy: str, configuration: dict[str, Any] | None) -> list[dict[str, Any]]:
    check_name(proxy, "proxy")
    client, proxy_name = daemons.resolve_proxy(proxy, configuration)
    return client.get(path("proxies", proxy_name, "toxics"))


def toxic_impacted(proxy: str, toxic: str, configuration: dict[str, Any] | None) -> bool:
    """Our proxy's counters when it keeps them, else the run's clients' own outcomes."""
    check_name(proxy, "proxy")
    check_name(toxic, "toxic")
    client, _ = daemons.resolve_proxy(proxy, configuration)
    if daemons.is_chaosagenkit_proxy(client):
        return toxic_acted(proxy, toxic, configuration) > 0
    return impacted_by_client_evidence(proxy, toxic)


def toxic_acted(proxy: str, toxic: str, configuration: dict[str, Any] | None) -> int:
    """How many times ``toxic`` changed traffic on ``proxy`` (0 if it never existed there)."""
    check_name(toxic, "toxic")
    stats = read_stats(proxy, configuration)
    return int(stats.get("toxics", {}).get(toxic, {}).get("acted", 0))


def impacted_by_client_evidence(proxy: str, toxic: str) -> bool:
    """Whether the run's clients saw toxic ``toxic`` of ``proxy`` change their requests.

    For a proxy that keeps no counters (a real Toxiproxy): True when a
    request the run's clients sent through ``proxy`` while the toxic was on
    it (from its ``inject`` to its ``clear`` on the timeline, or now) failed,
    or took longer than every request they sent through it before the
    toxic came. No such request, or none changed: False.
    """
    ref = SANDBOX.proxies.get(proxy)
    events = SANDBOX.timeline()
    injected = [e["t"] for e in events if e["event"] == "inject" and e.get("id") == toxic]
    if ref is None or not injected:
        return False
    since = injected[-1]
    cleared = [
        e["t"] for e in events if e["event"] == "clear" and e["t"] >= since and e.get("id") in (toxic, None)
    ]
    until = cleared[0] if cleared else float("inf")
    port = ref.listen.rsplit(":", 1)[-1]
    for client in list(SANDBOX.clients.values()):
        if client.endpoint.rstrip("/").rsplit(":", 1)[-1] != port:
            continue
        window = client.recorder.select()
        before = [
            lat for t, lat, ok in zip(window.t, window.latency_ms, window.ok, strict=True) if t < since and ok
        ]
        slowest_before = max(before) if before else float("inf")
        for t, latency, ok in zip(window.t, window.latency_ms, window.ok, strict=True):
            if since <= t <= until and (not ok or latency > slowest_before):
                return True
    return False


def _remove_quietly(client: ControlClient, proxy_name: str, toxic_name: str) -> None:
    try:
        client.delete(path("proxies", proxy_name, "toxics", toxic_name))
    except (ControlAPIError, TargetError) as e:
        logger.warning(f"could not expire toxic {toxic_name} on {proxy_name}: {e}")


def _enable_quietly(client: ControlClient, proxy_name: str) -> None:
    try:
        client.post(path("proxies", proxy_name), {"enabled": True})
        SANDBOX.record_event("enable", proxy_name)
    except (ControlAPIError, TargetError) as e:
        logger.warning(f"could not bring proxy {proxy_name} back up: {e}")


def _daemon_for(client: ControlClient) -> ProxyDaemonRef:
    """The SANDBOX entry of the API ``client`` talks to, registered if it came from configuration."""
    for daemon in SANDBOX.proxy_daemons.values():
        if daemon.url.rstrip("/") == client.base_url:
            return daemon
    ref = ProxyDaemonRef(name=client.base_url, url=client.base_url, token=client.token)
    SANDBOX.proxy_daemons[ref.name] = ref
    return ref
