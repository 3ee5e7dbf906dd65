"""The run's registry: everything this chaos process started or was pointed at.

Chaos Toolkit activities are plain functions called one after another (some
in background threads), so what they share lives here, keyed by the names
the experiment uses: servers ("target"), proxy daemons ("proxy"), proxies
("target_proxy") and clients ("caller"). ``chaosagenkit.control`` fills it
before the hypothesis and empties it whatever happens; activities look
names up here, and fall back to URLs/configuration when a name is unknown
(an experiment pointed at systems it did not start).

It also keeps the run's seed and its fault timeline (``record_event``),
which the control writes into the journal for reports, and the chaos hosts
an action injected a fault on by control URL without registering them
(``fault_hosts``): teardown clears their faults too, but never stops them.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chaosagenkit.seeds import derive_seed

__all__ = [
    "SANDBOX",
    "ProxyDaemonRef",
    "ProxyRef",
    "Sandbox",
    "ServerRef",
]


@dataclass
class ServerRef:
    """A chaos host (``chaosagenkit serve``) known to this run."""

    name: str
    endpoint: str  # where callers reach the agent: tcp://127.0.0.1:40123, http://...
    control_url: str  # the host's control API: http://127.0.0.1:40124
    token: str | None = None
    process: subprocess.Popen[bytes] | None = None  # set when this run started it
    argv: list[str] = field(default_factory=list)  # the command line it was started with


@dataclass
class ProxyDaemonRef:
    """A fault proxy API (``chaosagenkit proxy`` or a real Toxiproxy) known to this run."""

    name: str
    url: str  # http://127.0.0.1:8474
    token: str | None = None
    process: subprocess.Popen[bytes] | None = None  # set when this run started it


@dataclass
class ProxyRef:
    """A named proxy this run declared on a proxy API."""

    name: str
    daemon: str  # ProxyDaemonRef.name
    listen: str  # bound HOST:PORT that clients connect to
    upstream: str  # HOST:PORT of the real target
    created_by_run: bool = True  # delete it at teardown


class Sandbox:
    """Process-wide registry for one experiment run (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.seed: int | None = None
            self.configuration: dict[str, Any] = {}
            self.servers: dict[str, ServerRef] = {}
            self.fault_hosts: dict[str, ServerRef] = {}  # control URL -> host faulted by URL only
            self.proxy_daemons: dict[str, ProxyDaemonRef] = {}
            self.proxies: dict[str, ProxyRef] = {}
            self.clients: dict[str, Any] = {}  # name -> chaosagenkit.client harness object
            self.llm_endpoints: dict[str, Any] = {}  # name -> chaosagenkit.llm.process.LlmEndpointRef
            self.events: list[dict[str, Any]] = []
            self.not_injected: list[str] = []  # why each fault that could not be injected was not

    def record_event(
        self,
        event: str,
        target: str,
        *,
        kind: str | None = None,
        fault_id: str | None = None,
        duration_s: float | None = None,
        **detail: Any,
    ) -> dict[str, Any]:
        """Add an entry to the fault timeline (inject, clear, crash, restart, ...).

        ``event`` is what happened; ``target`` the server/proxy name or URL;
        ``kind`` the fault kind; ``duration_s`` when the fault expires by
        itself. The report draws fault windows from these entries.
        """
        entry: dict[str, Any] = {"t": time.time(), "event": event, "target": target}
        if kind is not None:
            entry["kind"] = kind
        if fault_id is not None:
            entry["id"] = fault_id
        if duration_s is not None:
            entry["duration_s"] = duration_s
        if detail:
            entry["detail"] = detail
        with self._lock:
            self.events.append(entry)
        return entry

    def record_injected(self, target: str, created: dict[str, Any]) -> dict[str, Any]:
        """Record a fault a control plane created (its answer to ``POST /faults``) as an inject."""
        return self.record_event(
            "inject",
            target,
            kind=created["kind"],
            fault_id=created["id"],
            duration_s=created.get("duration_s"),
            **created["params"],
        )

    def timeline(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def component_seed(self, component: str) -> int | None:
        """The seed for ``component`` derived from the run's seed, or None."""
        with self._lock:
            return None if self.seed is None else derive_seed(self.seed, component)


#: The one registry of this process.
SANDBOX = Sandbox()
