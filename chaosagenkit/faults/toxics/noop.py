"""``noop``: passes every byte through unchanged (Toxiproxy's ``noop``).

Useful to check that a client really goes through the proxy: a noop toxic
never acts, so ``traffic_impacted`` stays false while the proxy's byte
counters grow.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosagenkit.faults.toxics.base import Toxic, ToxicConfig

__all__ = ["NoopConfig", "NoopToxic"]


@dataclass(frozen=True)
class NoopConfig(ToxicConfig):
    """No attributes."""


class NoopToxic(Toxic):
    """Pass everything through."""

    type_name = "noop"
    Config = NoopConfig
