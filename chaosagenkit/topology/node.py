"""The agents a topology's hosts serve: agenkit compositions over edges, and workers.

``composition()`` (the factory ``chaosagenkit.topology.node:composition``)
reads ``CHAOSAGENKIT_COMPOSITION`` (written by ``chaosagenkit.topology.spec``)
and builds, inside the host's process:

- one ``EdgeCaller`` per outgoing edge: agenkit's RemoteAgent(s) under the
  edge's own agenkit middleware, built by the client stack
  (``chaosagenkit.client.harness.Client``: nothing of ours between the
  decorators), with every call's outcome recorded;
- agenkit's own composition class over those callers (``SequentialAgent``,
  ``ParallelAgent``, ``FallbackAgent``, ``ConditionalAgent`` from
  ``agenkit.composition``, or ``agenkit.patterns``' ``SequentialAgent``,
  ``ParallelAgent``, ``FallbackAgent``), unchanged: this module never
  decides what a composition does on a failure, agenkit does;
- a ``TopologyNode`` around it, which only forwards ``process`` and exposes
  ``metrics`` (the edges' outcomes and middleware, and what the composition
  answered), so the chaos host's ``GET /middleware`` shows them like the
  metrics of agenkit's own decorators (``chaosagenkit.middleware_view``).

An edge caller records what the composition saw: the outermost result of
the edge's middleware stack (a retried call is one call; the callee's
``/stats`` and the retry metrics tell the attempts).

``worker()`` is a leaf agent for topologies: the echo contract (the
request's content and ``request_id`` back), with an optional working time
and, for replicas that disagree, a divergent answer; configured by
``CHAOSAGENKIT_WORKER`` (JSON).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from agenkit.interfaces import Agent, Message

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.middleware_view import describe_chain

__all__ = ["WORKER_ENV", "EdgeCaller", "TopologyNode", "WorkerAgent", "composition", "worker"]

WORKER_ENV = "CHAOSAGENKIT_WORKER"
#: Outcomes an edge keeps (the oldest go first): bounded memory for long traffic.
MAX_OUTCOMES = 100_000


class EdgeCaller(Agent):
    """One edge seen from its calling host: agenkit's RemoteAgent + middleware, outcomes recorded."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        # Imported on use: it loads chaoslib; other paths here never need it.
        from chaosagenkit.client.harness import Client

        self._name = name
        self.target = spec.get("to")
        self.client = Client(
            name,
            spec["endpoint"],
            spec.get("middleware") or [],
            int(spec.get("timeout_ms") or 5000),
            int(spec.get("connections") or 1),
            answer_check="none",
        )
        self._agent = self.client.agent  # the edge's middleware stack (describe_chain walks it)
        self._source = self.client.new_source()

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> list[str]:
        return []

    async def process(self, message: Message) -> Message:
        sent_at = time.time()
        started = time.perf_counter()
        try:
            answer = await self._agent.process(message)
        except Exception as e:  # the composition decides what a failure means; we only note it
            self.client.recorder.record(
                sent_at, (time.perf_counter() - started) * 1000.0, e, False, self._source
            )
            raise
        self.client.recorder.record_answer(
            sent_at, (time.perf_counter() - started) * 1000.0, False, self._source
        )
        return answer

    async def stream(self, message: Message) -> Any:  # agenkit's interface; compositions call process()
        raise NotImplementedError("edges forward process() only")

    def describe(self) -> dict[str, Any]:

        window = self.client.recorder.select()
        summary = window.summary()
        return {
            "to": self.target,
            "endpoint": self.client.endpoint,
            "timeout_ms": self.client.timeout_ms,
            "connections": self.client.connections,
            "sent": summary["sent"],
            "ok": summary["ok"],
            "errors": summary["errors"],
            "latency_ms": summary["latency_ms"],
            "middleware": describe_chain(self._agent),
            "outcomes": {  # epoch send times: probes select by the run's timeline
                "t": [round(t, 4) for t in window.t[-MAX_OUTCOMES:]],
                "latency_ms": [round(v, 2) for v in window.latency_ms[-MAX_OUTCOMES:]],
                "error": window.error[-MAX_OUTCOMES:],
            },
        }


class TopologyNode(Agent):
    """The served agent of a composition host: agenkit's composition, plus its edges as metrics."""

    def __init__(self, name: str, kind: str, composed: Agent, edges: dict[str, EdgeCaller]) -> None:
        self._name = name
        self.kind = kind
        self._agent = composed  # agenkit's composition, unchanged
        self.edges = edges
        self.answered = 0
        self.failed: dict[str, int] = {}
        self.parts: dict[str, int] = {}  # successful children per answer (parallel kinds)

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> list[str]:
        return list(self._agent.capabilities)

    async def process(self, message: Message) -> Message:
        try:
            answer = await self._agent.process(message)
        except Exception as e:
            self.failed[type(e).__name__] = self.failed.get(type(e).__name__, 0) + 1
            raise
        self.answered += 1
        parts = _parts_of(self.kind, answer)
        if parts is not None:
            self.parts[str(parts)] = self.parts.get(str(parts), 0) + 1
        return answer

    async def stream(self, message: Message) -> Any:
        raise NotImplementedError("a composition host answers process() only")

    @property
    def metrics(self) -> dict[str, Any]:
        """What GET /middleware shows for this node (JSON, read by chaosagenkit.topology.probes)."""
        return {
            "kind": self.kind,
            "composition": f"{type(self._agent).__module__}.{type(self._agent).__name__}",
            "answered": self.answered,
            "failed": dict(self.failed),
            "parts": dict(self.parts),
            "edges": {name: edge.describe() for name, edge in self.edges.items()},
        }


class WorkerAgent(Agent):
    """A leaf: echo content and request_id, after ``work_ms``; ``divergent`` changes the content."""

    def __init__(self, tag: str = "worker", work_ms: int = 0, divergent: bool = False) -> None:
        self.tag = tag
        self.work_s = work_ms / 1000.0
        self.divergent = divergent

    @property
    def name(self) -> str:
        return self.tag

    async def process(self, message: Message) -> Message:
        if self.work_s:
            await asyncio.sleep(self.work_s)  # the agent's own work: a SIGTERM finds it in flight
        content = f"{message.content} (as {self.tag} sees it)" if self.divergent else message.content
        return Message(
            role="agent",
            content=content,
            metadata={"request_id": (message.metadata or {}).get("request_id"), "worker": self.tag},
        )


def composition() -> Agent:
    """The composition host's agent, from ``CHAOSAGENKIT_COMPOSITION`` (see chaosagenkit.topology.spec)."""
    # Imported on use: it loads chaoslib; other paths here never need it.
    from chaosagenkit.topology.spec import COMPOSITION_ENV

    raw = os.environ.get(COMPOSITION_ENV, "")
    try:
        spec = json.loads(raw)
    except ValueError as e:
        raise ConfigurationError(COMPOSITION_ENV, f"must be the JSON of a composition: {e}") from e
    if not isinstance(spec, dict) or not isinstance(spec.get("edges"), dict):
        raise ConfigurationError(COMPOSITION_ENV, f"must name a kind and edges, got {raw!r:.80}")
    edges = {name: EdgeCaller(name, edge) for name, edge in spec["edges"].items()}
    return TopologyNode(spec.get("name") or "node", spec["kind"], _compose(spec, edges), edges)


def worker() -> Agent:
    """A worker leaf from ``CHAOSAGENKIT_WORKER``: {"tag": str, "work_ms": int, "divergent": bool}."""
    raw = os.environ.get(WORKER_ENV, "") or "{}"
    try:
        spec = json.loads(raw)
    except ValueError as e:
        raise ConfigurationError(WORKER_ENV, f"must be JSON: {e}") from e
    unknown = sorted(set(spec) - {"tag", "work_ms", "divergent"}) if isinstance(spec, dict) else ["?"]
    if unknown:
        raise ConfigurationError(WORKER_ENV, f"knows tag, work_ms and divergent, got {raw!r:.80}")
    work_ms = spec.get("work_ms", 0)
    if isinstance(work_ms, str) and work_ms.isdigit():  # "${work_ms}" substituted inside a JSON text
        work_ms = int(work_ms)
    if isinstance(work_ms, bool) or not isinstance(work_ms, int) or work_ms < 0:
        raise ConfigurationError(f"{WORKER_ENV}.work_ms", f"must be an integer >= 0, got {work_ms!r}")
    return WorkerAgent(str(spec.get("tag") or "worker"), work_ms, bool(spec.get("divergent", False)))


def _compose(spec: dict[str, Any], edges: dict[str, EdgeCaller]) -> Agent:
    """agenkit's own composition class of ``spec["kind"]`` over the edge callers."""
    kind, name = spec.get("kind"), spec.get("name") or "node"
    if kind == "conditional":
        from agenkit.composition import ConditionalAgent

        conditional = ConditionalAgent(name, default_agent=edges[spec["default"]])
        for route in spec.get("routes") or []:
            conditional.add_route(_condition(route["when"]), edges[route["edge"]])
        return conditional
    children = [edges[child] for child in spec.get("children") or []]
    if kind in ("sequential", "parallel", "fallback"):
        import agenkit.composition as composition_module

        cls = {"sequential": "SequentialAgent", "parallel": "ParallelAgent", "fallback": "FallbackAgent"}[
            kind
        ]
        return getattr(composition_module, cls)(name, children)
    if kind in ("patterns.sequential", "patterns.fallback"):
        import agenkit.patterns as patterns

        return (patterns.SequentialAgent if kind == "patterns.sequential" else patterns.FallbackAgent)(
            children
        )
    if kind == "patterns.parallel":
        from agenkit.patterns import ParallelAgent, default_aggregators

        return ParallelAgent(
            children, getattr(default_aggregators, spec.get("aggregator") or "majority_vote")
        )
    raise ConfigurationError(f"{spec.get('name')}.kind", f"is not a composition kind: {kind!r}")


def _condition(when: dict[str, Any]) -> Any:
    """agenkit's condition helper for a declared condition (request_id_prefix is ours: agenkit has none)."""
    import agenkit.composition as composition_module

    condition, value = next(iter(when.items()))
    if condition == "metadata_equals":
        return composition_module.metadata_equals(value[0], value[1])
    if condition == "request_id_prefix":
        prefix = str(value)
        return lambda message: str((message.metadata or {}).get("request_id", "")).startswith(prefix)
    return getattr(composition_module, condition)(value)


def _parts_of(kind: str, answer: Message) -> int | None:
    """How many children contributed to a parallel answer (agenkit's own metadata says it)."""
    metadata = answer.metadata or {}
    if kind == "patterns.parallel":
        value = metadata.get("successful_agents")
        return value if isinstance(value, int) else None
    if kind == "parallel":  # agenkit.composition.ParallelAgent labels each part "[name]: ..."
        return sum(1 for line in str(answer.content).splitlines() if line.startswith("["))
    return None
