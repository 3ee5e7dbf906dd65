"""The chaos host: one agenkit agent served by agenkit's own server, with faults at run time.

``chaosagenkit serve`` runs a ``ChaosHost``: the agent made by the user's
factory is wrapped in ``ChaosAgent`` and served by agenkit's own server for
the endpoint's transport (``chaosagenkit.service.servers``: ``LocalAgent``
for tcp://, unix://, ws://; ``HTTPAgentServer`` for http:// and h2c://, with
agenkit's default middleware unless turned off; ``GRPCServer`` for
grpc://), and a control API (``chaosagenkit.service.api``) beside it changes
the faults. Every change goes through this class, which keeps
three things in step (``_reconcile``): the policy's active faults, the
delays waiting on them, and the memory and CPU pressure they hold. A timer
fires at the next expiry so a fault's resources go when its time is up,
even when no request comes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from chaosagenkit import __version__
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.service import (
    ActiveFault,
    CpuPressure,
    Crash,
    MemoryPressure,
    parse_faults,
)
from chaosagenkit.limits import DEFAULT_TTL_S
from chaosagenkit.middleware_view import describe_chain
from chaosagenkit.references import import_reference
from chaosagenkit.service.chaos_agent import ChaosAgent, crash_process
from chaosagenkit.service.endpoint import TRANSPORT_LIMITS, Endpoint
from chaosagenkit.service.resources import HostResources
from chaosagenkit.service.servers import start_agent_server

__all__ = ["CRASH_DELAY_S", "ChaosHost", "HostConfig", "load_agent"]

logger = logging.getLogger(__name__)

#: How long a "crash now" waits so the control API's answer leaves first.
CRASH_DELAY_S = 0.1


def load_agent(reference: str) -> Any:
    """Call the zero-argument factory ``MODULE:FACTORY``; it must return an agenkit Agent."""
    from agenkit.interfaces import Agent

    factory = import_reference(reference, "agent", "MODULE:FACTORY")
    if not callable(factory):
        raise ConfigurationError("agent", f"{reference!r} is not callable")
    try:
        agent = factory()
    except Exception as e:
        raise ConfigurationError("agent", f"{reference}() failed: {type(e).__name__}: {e}") from e
    if not isinstance(agent, Agent):
        raise ConfigurationError(
            "agent", f"{reference}() must return an agenkit.interfaces.Agent, got {type(agent).__name__}"
        )
    return agent


@dataclass(frozen=True)
class HostConfig:
    endpoint: Endpoint
    control_host: str = "127.0.0.1"
    control_port: int = 0
    token: str | None = None
    seed: int = 0
    http_default_middleware: bool = True
    #: TTL of a fault added without ``duration_s`` (``--default-ttl``).
    default_ttl_s: float = DEFAULT_TTL_S
    #: Host names the control API answers to besides its address (``--allowed-host``).
    allowed_hosts: tuple[str, ...] = ()
    #: Serve browser user agents on the control API (``--allow-browsers``).
    allow_browsers: bool = False


class ChaosHost:
    """Serve ``agent`` wrapped in a ChaosAgent, and apply fault changes."""

    def __init__(self, agent: Any, config: HostConfig) -> None:
        self.config = config
        self.chaos = ChaosAgent(agent, seed=config.seed)
        self.resources = HostResources()
        self.started_at = time.time()
        self._server: Any = None
        self._served: Any = None  # the outermost object agenkit's server calls
        self._control_runner: Any = None
        self.agent_port = 0
        self.control_port = 0
        self._expiry_timer: asyncio.TimerHandle | None = None

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        """Bind the agent server and the control API; return the ready line's content."""
        # Imported on use: it loads aiohttp; other paths here never need it.
        from chaosagenkit.api import start_app
        from chaosagenkit.control_options import ControlOptions
        from chaosagenkit.service.api import application

        await self._start_agent_server()
        try:
            options = ControlOptions(
                token=self.config.token,
                allowed_hosts=self.config.allowed_hosts,
                allow_browsers=self.config.allow_browsers,
            )
            app = application(self, options)
            self._control_runner, self.control_port = await start_app(
                app, self.config.control_host, self.config.control_port
            )
        except BaseException:
            await self._server.stop()
            raise
        limits = TRANSPORT_LIMITS.get(self.config.endpoint.scheme)
        if limits:  # one line on stderr: what agenkit cannot do on this transport
            logger.warning(limits)
        return {"event": "ready", **self.describe()}

    async def stop(self) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self.chaos.clear_faults()
        self.resources.release(self.resources.held_ids())
        if self._control_runner is not None:
            await self._control_runner.cleanup()
        if self._server is not None:
            await self._server.stop()

    async def _start_agent_server(self) -> None:

        self._server = await start_agent_server(
            self.chaos, self.config.endpoint, self.config.http_default_middleware
        )
        self._served = self._server.served
        self.agent_port = self._server.port

    # -- what the control API shows -----------------------------------------

    @property
    def endpoint_url(self) -> str:
        return self.config.endpoint.url(self.agent_port)

    @property
    def control_url(self) -> str:
        host = self.config.control_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.control_port}"

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint_url,
            "control": self.control_url,
            "pid": os.getpid(),
            "seed": self.chaos.policy.seed,
            "agent": self.chaos.name,
            "transport": self.config.endpoint.scheme,
            "transport_limits": TRANSPORT_LIMITS.get(self.config.endpoint.scheme),
            "ports": {"agent": self.agent_port, "control": self.control_port},
        }

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            **self.describe(),
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 3),
            "http_default_middleware": self.config.endpoint.scheme in ("http", "h2c")
            and self.config.http_default_middleware,
        }

    def stats(self) -> dict[str, Any]:
        self._reconcile()
        # asyncio_tasks: the explorer's leak check compares it before and after a run
        return {**self.chaos.stats, **self.resources.stats(), "asyncio_tasks": len(asyncio.all_tasks())}

    def faults(self) -> list[dict[str, Any]]:
        return [fault.to_json() for fault in self._active()]

    def middleware(self) -> list[dict[str, Any]]:

        return describe_chain(self._served)

    # -- changes -------------------------------------------------------------

    async def add_faults(self, data: Any) -> list[dict[str, Any]]:
        """Add one fault or a list (all or nothing); a crash "now" exits right after."""
        specs = parse_faults(data, default_ttl_s=self.config.default_ttl_s)
        listed = isinstance(data, list)
        self.resources.check_memory(
            (f"[{i}].mib" if listed else "mib", spec.mib)
            for i, spec in enumerate(specs)
            if isinstance(spec, MemoryPressure)
        )
        added = self.chaos.add_specs(specs)
        try:
            for fault in added:
                await self._acquire(fault)
        except BaseException:
            for fault in added:
                self.chaos.remove_fault(fault.id)
            self._reconcile()
            raise
        self._reconcile()
        if any(isinstance(f.spec, Crash) and f.spec.when == "now" for f in added):
            self.crash_soon("crash fault, when=now")
        return [fault.to_json() for fault in added]

    def remove_fault(self, fault_id: str) -> dict[str, Any] | None:
        fault = self.chaos.remove_fault(fault_id)
        self._reconcile()
        return None if fault is None else fault.to_json()

    def clear_faults(self) -> list[dict[str, Any]]:
        removed = self.chaos.clear_faults()
        self._reconcile()
        return [fault.to_json() for fault in removed]

    def reseed(self, seed: int) -> None:
        self.chaos.policy.reseed(seed)

    def crash_soon(self, reason: str) -> None:
        """Exit with CRASH_EXIT_CODE after CRASH_DELAY_S, so the answer to the caller leaves."""
        asyncio.get_running_loop().call_later(CRASH_DELAY_S, crash_process, reason)

    async def _acquire(self, fault: ActiveFault) -> None:
        if isinstance(fault.spec, MemoryPressure):
            await self.resources.hold_memory(fault.id, fault.spec.mib)
        elif isinstance(fault.spec, CpuPressure):
            self.resources.start_cpu(fault.id, fault.spec.threads)

    def _active(self) -> list[ActiveFault]:
        self._reconcile()
        return self.chaos.active_faults()

    def _reconcile(self) -> None:
        active = self.chaos.reconcile()
        self.resources.release_all_but(active)
        self._schedule_expiry()

    def _schedule_expiry(self) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        next_expiry = self.chaos.policy.next_expiry
        if next_expiry is not None:
            delay = max(0.0, next_expiry - time.time()) + 0.001
            self._expiry_timer = asyncio.get_running_loop().call_later(delay, self._reconcile)
