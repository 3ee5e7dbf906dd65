"""Chaos Toolkit probes of chaosagenkit's fault proxy."""

from typing import Any

from chaosagenkit.activity import activity
from chaosagenkit.network import operations

__all__ = ["list_toxics", "proxy_stats", "traffic_impacted"]


@activity
def proxy_stats(proxy: str, configuration: dict = None, secrets: dict = None) -> dict[str, Any]:
    """Read the traffic counters of ``proxy``.

    Returns ``connections_total``, ``connections_active``, bytes
    ``received``/``sent`` per direction (``upstream`` = client to server),
    and per toxic (also removed ones) ``acted`` (times it changed traffic)
    and ``connections`` (connections it applied to). Needs chaosagenkit's
    proxy; a real Toxiproxy keeps no such counters.
    """
    return operations.read_stats(proxy, configuration)


@activity
def list_toxics(proxy: str, configuration: dict = None, secrets: dict = None) -> list[dict[str, Any]]:
    """List the toxics active on ``proxy`` (Toxiproxy's toxic JSON)."""
    return operations.read_toxics(proxy, configuration)


@activity
def traffic_impacted(proxy: str, toxic: str, configuration: dict = None, secrets: dict = None) -> bool:
    """Tell whether toxic ``toxic`` really changed traffic through ``proxy``.

    On chaosagenkit's proxy: True only if the toxic acted at least once
    (delayed, dropped, cut or corrupted something), also after it was
    removed, from the proxy's counters. On a proxy that keeps no counters
    (a real Toxiproxy), the evidence comes from the run's clients: a request
    sent through the proxy while the toxic was on failed, or was slower than
    every request before it. False when no traffic met it, for instance
    because the client bypassed the proxy. Use it to keep an experiment from
    passing by accident.
    """
    return operations.toxic_impacted(proxy, toxic, configuration)
