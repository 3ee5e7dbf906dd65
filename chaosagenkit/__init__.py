"""Chaos Toolkit extension for agenkit.

Real faults for distributed AI agents built on agenkit: a chaos host that
serves any agenkit agent with service faults controlled at run time, a fault
proxy that speaks Toxiproxy's API and understands agenkit's frames, and a
client harness that drives traffic through agenkit's own RemoteAgent and
resilience middleware and reads what the middleware did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # chaoslib is only needed when Chaos Toolkit asks for discovery
    from chaoslib.types import DiscoveredActivities, Discovery

__all__ = ["ACTIVITY_MODULES", "__version__", "discover", "load_exported_activities"]
__version__ = "0.1.0"

#: Every module whose ``__all__`` Chaos Toolkit can call, with what it holds.
ACTIVITY_MODULES: tuple[tuple[str, str], ...] = (
    ("chaosagenkit.service.actions", "action"),
    ("chaosagenkit.service.probes", "probe"),
    ("chaosagenkit.network.actions", "action"),
    ("chaosagenkit.network.probes", "probe"),
    ("chaosagenkit.client.actions", "action"),
    ("chaosagenkit.client.probes", "probe"),
    ("chaosagenkit.explore.actions", "action"),
    ("chaosagenkit.explore.probes", "probe"),
)


def discover(discover_system: bool = True) -> Discovery:
    """Describe chaosagenkit's activities for ``chaos discover chaosagenkit``."""
    from chaoslib.discovery import initialize_discovery_result
    from logzero import logger

    logger.info("Discovering capabilities from chaosagenkit")
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
