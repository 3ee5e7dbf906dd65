"""Network toxics: pure fault logic for one direction of a TCP connection.

``TOXICS`` maps each type name (Toxiproxy's, plus ours) to its class; the
contract every toxic keeps is stated in ``base``.
"""

from __future__ import annotations

from typing import Any

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.toxics.bandwidth import BandwidthToxic
from chaosagenkit.faults.toxics.base import Toxic
from chaosagenkit.faults.toxics.delay_frame import DelayFrameToxic
from chaosagenkit.faults.toxics.drop_frame import DropFrameToxic
from chaosagenkit.faults.toxics.duplicate_frame import DuplicateFrameToxic
from chaosagenkit.faults.toxics.latency import LatencyToxic
from chaosagenkit.faults.toxics.limit_data import LimitDataToxic
from chaosagenkit.faults.toxics.malformed_frame import MalformedFrameToxic
from chaosagenkit.faults.toxics.noop import NoopToxic
from chaosagenkit.faults.toxics.packet_loss import PacketLossToxic
from chaosagenkit.faults.toxics.reorder_frames import ReorderFramesToxic
from chaosagenkit.faults.toxics.reset_peer import ResetPeerToxic
from chaosagenkit.faults.toxics.slicer import SlicerToxic
from chaosagenkit.faults.toxics.slow_close import SlowCloseToxic
from chaosagenkit.faults.toxics.timeout import TimeoutToxic

__all__ = ["EXTENSION_TYPES", "TOXICS", "TOXIPROXY_TYPES", "build_toxic"]

#: The toxics Toxiproxy itself has: a real Toxiproxy server accepts these.
TOXIPROXY_TYPES = (
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "noop",
)
#: Ours: they need chaosagenkit's proxy.
EXTENSION_TYPES = (
    "packet_loss",
    "malformed_frame",
    "drop_frame",
    "delay_frame",
    "duplicate_frame",
    "reorder_frames",
)

TOXICS: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (
        LatencyToxic,
        BandwidthToxic,
        SlowCloseToxic,
        TimeoutToxic,
        ResetPeerToxic,
        SlicerToxic,
        LimitDataToxic,
        NoopToxic,
        PacketLossToxic,
        MalformedFrameToxic,
        DropFrameToxic,
        DelayFrameToxic,
        DuplicateFrameToxic,
        ReorderFramesToxic,
    )
}


def build_toxic(type_name: Any, attributes: Any, base: Toxic | None = None) -> Toxic:
    """A toxic of ``type_name`` from Toxiproxy JSON attributes (merged onto ``base``'s)."""
    cls = TOXICS.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        known = ", ".join(TOXICS)
        raise ConfigurationError("type", f"must be one of {known}, got {type_name!r}")
    return cls.from_attributes(attributes, base.config if base is not None else None)
