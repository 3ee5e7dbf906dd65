"""Chaos Toolkit actions of chaosagenkit's fault proxy (and of any Toxiproxy server).

A proxy is named as the experiment's control declared it, or, for a proxy
the run did not declare, looked up on the API in ``configuration``
(``toxiproxy_url``, or ``toxiproxy_host``/``toxiproxy_port``), so the same
experiment can drive a real Toxiproxy. Toxiproxy's own toxics work
everywhere; ``inject_packet_loss``, ``inject_malformed_payload`` and the
frame toxics of ``add_toxic`` need chaosagenkit's proxy.

Every injecting action takes ``stream`` ("downstream" = server to client,
"upstream" = client to server), ``toxicity`` (the probability that the
toxic applies: per connection, or per message for frame toxics),
``duration_s`` (a safety TTL, default 300 s, must be > 0: the fault is
removed after that many seconds, so it never outlives a crashed or
interrupted experiment by more than that; the control also removes
everything at the end of the run) and
``name`` (default TYPE_STREAM, as Toxiproxy). Each returns the toxic as
the API shows it and records it on the run's fault timeline.
"""

from typing import Any

from chaosagenkit.activity import activity, require_choice, require_number
from chaosagenkit.faults.framing import MALFORMED_KINDS, PROTOCOLS
from chaosagenkit.limits import DEFAULT_TTL_S
from chaosagenkit.network import operations

__all__ = [
    "add_toxic",
    "create_proxy",
    "delete_proxy",
    "disable_proxy",
    "drop_connections",
    "enable_proxy",
    "inject_bandwidth_limit",
    "inject_latency",
    "inject_malformed_payload",
    "inject_packet_loss",
    "inject_timeout",
    "remove_toxic",
    "reset_proxies",
]

DROP_MODES = ("reset", "cut")


@activity
def create_proxy(
    name: str,
    upstream: str,
    listen: str = "127.0.0.1:0",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Create a named proxy from ``listen`` to ``upstream`` on the run's proxy API.

    ``upstream`` is "HOST:PORT", "unix:/PATH" (a unix socket) or
    "server:NAME" (a server the control started, unix:// ones included);
    ``listen`` is "HOST:PORT" (port 0: any free port) or "unix:/PATH". A proxy of
    the same name left by an earlier run is replaced; the run deletes the
    proxy when it ends. Returns the proxy JSON, whose ``listen`` is the
    bound address. Fails if the address is taken or the API is unreachable.
    """
    return operations.create_proxy(name, upstream, listen, configuration)


@activity
def delete_proxy(name: str, configuration: dict = None, secrets: dict = None) -> bool:
    """Delete proxy ``name`` with its toxics and its connections; returns True."""
    operations.delete_proxy(name, configuration)
    return True


@activity
def disable_proxy(
    name: str, duration_s: float = DEFAULT_TTL_S, configuration: dict = None, secrets: dict = None
) -> dict[str, Any]:
    """Take proxy ``name`` down: close its listener and every connection through it.

    Clients then see connections refused or closed, as when the service is
    down. It comes back up after ``duration_s`` seconds (default 300).
    Returns the proxy JSON.
    """
    return operations.set_enabled(name, False, duration_s, configuration)


@activity
def enable_proxy(name: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Bring proxy ``name`` back up on the same address; returns the proxy JSON."""
    return operations.set_enabled(name, True, 0.0, configuration)


@activity
def inject_latency(
    proxy: str,
    latency_ms: int,
    jitter_ms: int = 0,
    stream: str = "downstream",
    toxicity: float = 1.0,
    duration_s: float = DEFAULT_TTL_S,
    name: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Delay every chunk through ``proxy`` by ``latency_ms`` ms, plus or minus up to ``jitter_ms`` ms.

    Toxiproxy's ``latency`` toxic. Data is delayed, never lost; a client
    whose timeout is shorter than the latency times out.
    """
    require_number(latency_ms, "latency_ms", minimum=0, integer=True)
    require_number(jitter_ms, "jitter_ms", minimum=0, integer=True)
    return operations.inject_toxic(
        proxy,
        "latency",
        {"latency": latency_ms, "jitter": jitter_ms},
        stream=stream,
        toxicity=toxicity,
        duration_s=duration_s,
        name=name,
        configuration=configuration,
    )


@activity
def inject_bandwidth_limit(
    proxy: str,
    rate_kbps: int,
    stream: str = "downstream",
    toxicity: float = 1.0,
    duration_s: float = DEFAULT_TTL_S,
    name: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Limit throughput through ``proxy`` to ``rate_kbps`` KB/s (kilobytes per second, as Toxiproxy).

    Toxiproxy's ``bandwidth`` toxic; 0 means unlimited.
    """
    require_number(rate_kbps, "rate_kbps", minimum=0, integer=True)
    return operations.inject_toxic(
        proxy,
        "bandwidth",
        {"rate": rate_kbps},
        stream=stream,
        toxicity=toxicity,
        duration_s=duration_s,
        name=name,
        configuration=configuration,
    )


@activity
def inject_timeout(
    proxy: str,
    timeout_ms: int = 0,
    stream: str = "downstream",
    toxicity: float = 1.0,
    duration_s: float = DEFAULT_TTL_S,
    name: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Stop all data through ``proxy``; close connections after ``timeout_ms`` ms (0: never).

    Toxiproxy's ``timeout`` toxic: data is dropped, not delayed, and removing
    the toxic closes the connections it held. Clients see their own timeout.
    """
    require_number(timeout_ms, "timeout_ms", minimum=0, integer=True)
    return operations.inject_toxic(
        proxy,
        "timeout",
        {"timeout": timeout_ms},
        stream=stream,
        toxicity=toxicity,
        duration_s=duration_s,
        name=name,
        configuration=configuration,
    )


@activity
def drop_connections(
    proxy: str,
    mode: str = "reset",
    timeout_ms: int = 0,
    after_bytes: int = 0,
    stream: str = "downstream",
    toxicity: float = 1.0,
    duration_s: float = DEFAULT_TTL_S,
    name: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Break connections through ``proxy``: reset them, or cut them after some bytes.

    ``mode`` "reset": TCP RST ``timeout_ms`` ms after data first flows
    (Toxiproxy's ``reset_peer``; as in Toxiproxy, a connection already open
    when the toxic is added is closed with FIN instead); "cut": close the
    stream after ``after_bytes`` bytes (Toxiproxy's ``limit_data``). Clients
    see a connection reset or closed by the peer.
    """
    require_choice(mode, "mode", DROP_MODES)
    require_number(timeout_ms, "timeout_ms", minimum=0, integer=True)
    require_number(after_bytes, "after_bytes", minimum=0, integer=True)
    toxic_type, attributes = (
        ("reset_peer", {"timeout": timeout_ms}) if mode == "reset" else ("limit_data", {"bytes": after_bytes})
    )
    return operations.inject_toxic(
        proxy,
        toxic_type,
        attributes,
        stream=stream,
        toxicity=toxicity,
        duration_s=duration_s,
        name=name,
        configuration=configuration,
    )


@activity
def inject_packet_loss(
    proxy: str,
    loss_rate: float,
    correlation: float = 0.0,
    rto_ms: int = 200,
    max_rto_ms: int = 120000,
    segment_size: int = 1460,
    stream: str = "downstream",
    toxicity: float = 1.0,
    duration_s: float = DEFAULT_TTL_S,
    name: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Emulate TCP packet loss through ``proxy``: each lost segment stalls the stream.

    ``loss_rate`` (0..1) per transmission of a ``segment_size``-byte
    segment; ``correlation`` (0..1) makes a loss after a loss likelier
    (bursts); a lost segment waits a retransmission timeout starting at
    ``rto_ms`` and doubling per consecutive loss up to ``max_rto_ms``. An
    emulation (see docs/network.md): bytes are delayed, never lost.
    Needs chaosagenkit's proxy.
    """
    require_number(loss_rate, "loss_rate", minimum=0, maximum=1)
    require_number(correlation, "correlation", minimum=0, maximum=1)
    require_number(rto_ms, "rto_ms", minimum=1, integer=True)
    require_number(max_rto_ms, "max_rto_ms", minimum=1, integer=True)
    require_number(segment_size, "segment_size", minimum=1, integer=True)
    attributes = {
        "loss_rate": loss_rate,
        "correlation": correlation,
        "rto": rto_ms,
        "max_rto": max_rto_ms,
        "segment_size": segment_size,
    }
    return operations.inject_toxic(
        proxy,
        "packet_loss",
        attributes,
        stream=stream,
        toxicity=toxicity,
        duration_s=duration_s,
        name=name,
        configuration=configuration,
    )


@activity
def inject_malformed_payload(
    proxy: str,
    kind: str = "invalid_json",
    rate: float = 1.0,
    stream: str = "downstream",
    protocol: str = "auto",
    duration_s: float = DEFAULT_TTL_S,
    name: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Corrupt agenkit messages through ``proxy``: a fraction ``rate`` (0..1) of them, of ``kind``.

    ``kind``: invalid_json, invalid_utf8, wrong_type, missing_fields (JSON
    envelopes: tcp, unix, ws, http, h2c), truncated, oversized_length,
    wrong_length, broken_header (every framing where it applies),
    invalid_protobuf (grpc), wrong_compressed_flag (grpc, ws), invalid_encoding
    (invalid_json, or invalid_protobuf over grpc: one kind for every
    transport). Works on every
    agenkit transport (``protocol`` auto-detects; "agenkit", "http",
    "websocket" or "grpc" forces one, and then a kind that does not apply is
    refused); other traffic, and messages of a framing the kind does not
    apply to, pass untouched. Needs chaosagenkit's proxy.
    """
    require_choice(kind, "kind", MALFORMED_KINDS)
    require_choice(protocol, "protocol", PROTOCOLS)
    require_number(rate, "rate", minimum=0, maximum=1)
    return operations.inject_toxic(
        proxy,
        "malformed_frame",
        {"kind": kind, "protocol": protocol},
        stream=stream,
        toxicity=rate,
        duration_s=duration_s,
        name=name,
        configuration=configuration,
    )


@activity
def add_toxic(
    proxy: str,
    toxic_type: str,
    attributes: dict = None,
    stream: str = "downstream",
    toxicity: float = 1.0,
    duration_s: float = DEFAULT_TTL_S,
    name: str = "",
    configuration: dict = None,
    secrets: dict = None,
) -> dict[str, Any]:
    """Add any toxic to ``proxy`` with Toxiproxy's attribute names.

    ``toxic_type``: latency, bandwidth, slow_close, timeout, reset_peer,
    slicer, limit_data, noop (Toxiproxy's), or packet_loss,
    malformed_frame, drop_frame, delay_frame, duplicate_frame,
    reorder_frames (chaosagenkit's proxy only). ``attributes`` are checked
    before anything changes; see docs/network.md for each toxic's.
    """
    return operations.inject_toxic(
        proxy,
        toxic_type,
        attributes or {},
        stream=stream,
        toxicity=toxicity,
        duration_s=duration_s,
        name=name,
        configuration=configuration,
    )


@activity
def remove_toxic(proxy: str, name: str, configuration: dict = None, secrets: dict = None) -> bool:
    """Remove toxic ``name`` from ``proxy``; what it held is delivered at once.

    Returns True if it was there, False if it had already gone (expired).
    """
    return operations.remove_toxic(proxy, name, configuration)


@activity
def reset_proxies(configuration: dict = None, secrets: dict = None) -> bool:
    """Enable every proxy and remove every toxic on the run's proxy API (Toxiproxy's /reset)."""
    operations.reset_all(configuration)
    return True
