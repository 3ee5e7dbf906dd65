"""Chaos Toolkit extension for agenkit.

Real faults for distributed AI agents built on agenkit: a chaos host that
serves any agenkit agent with service faults controlled at run time, a fault
proxy that speaks Toxiproxy's API and understands agenkit's frames, and a
client harness that drives traffic through agenkit's own RemoteAgent and
resilience middleware and reads what the middleware did.

``from chaosagenkit import ChaosAgent`` wraps your own agent with service
faults in your own code; it is imported on first use, so ``import
chaosagenkit`` stays fast and never imports agenkit (about a second).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # chaoslib is only needed when Chaos Toolkit asks for discovery
    from chaoslib.types import DiscoveredActivities, Discovery

    from chaosagenkit.service.chaos_agent import ChaosAgent

__all__ = ["ACTIVITY_MODULES", "ChaosAgent", "__version__", "discover", "load_exported_activities"]
__version__ = "0.1.0"

#: public names imported on first use (they pull in agenkit), and where they live
_LAZY = {"ChaosAgent": "chaosagenkit.service.chaos_agent"}

#: Every module whose ``__all__`` Chaos Toolkit can call, with what it holds.
ACTIVITY_MODULES: tuple[tuple[str, str], ...] = (
    ("chaosagenkit.service.actions", "action"),
    ("chaosagenkit.service.probes", "probe"),
    ("chaosagenkit.network.actions", "action"),
    ("chaosagenkit.network.probes", "probe"),
    ("chaosagenkit.client.actions", "action"),
    ("chaosagenkit.client.probes", "probe"),
    ("chaosagenkit.llm.actions", "action"),
    ("chaosagenkit.llm.probes", "probe"),
    ("chaosagenkit.kernel.actions", "action"),
    ("chaosagenkit.kernel.probes", "probe"),
    ("chaosagenkit.topology.actions", "action"),
    ("chaosagenkit.topology.probes", "probe"),
    ("chaosagenkit.explore.actions", "action"),
    ("chaosagenkit.explore.probes", "probe"),
)


def discover(discover_system: bool = True) -> Discovery:
    """Describe chaosagenkit's activities for ``chaos discover chaosagenkit``."""
    from chaoslib.discovery import initialize_discovery_result

    logging.getLogger("chaostoolkit").info("Discovering capabilities from chaosagenkit")
    discovery = initialize_discovery_result("chaosagenkit", __version__, "agenkit")
    discovery["activities"].extend(load_exported_activities())
    return discovery


def load_exported_activities() -> list[DiscoveredActivities]:
    """List every action and probe chaosagenkit exports, probes labelled as probes."""
    from chaoslib.discovery.discover import discover_actions, discover_probes

    activities: list[DiscoveredActivities] = []
    for module, kind in ACTIVITY_MODULES:
        found = discover_probes(module) if kind == "probe" else discover_actions(module)
        activities.extend(found)
    return activities


def __getattr__(name: str) -> Any:
    """Import ``ChaosAgent`` (and agenkit with it) only when it is asked for."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'chaosagenkit' has no attribute {name!r}")
