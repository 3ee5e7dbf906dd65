"""A run's kernel network: build it, inject and clear packet faults, read the kernel, tear it down.

What the kernel activities and ``chaosagenkit.control`` call; the only place
that strings the pure plans (topology, nft, tc, relay_policy) to the I/O
(system, relay, guard, bridge). Rules kept here:

- Build order is safety order: refuse with a one-line reason when the
  machine cannot (``KernelUnavailable``); sweep namespaces of dead runs;
  write the state file and start the guard BEFORE the first namespace
  exists; then namespaces, link, tables, relay, sysctls. Any failure tears
  down what exists.
- The run's clients call from the callers' namespace: the client runtime's
  event-loop thread enters it (``setns`` changes that thread only), so
  every socket agenkit's RemoteAgent opens is born there. Servers declared
  with ``"namespace": "target"`` run under ``ip netns exec`` (the
  ``Placement`` hook of ``chaosagenkit.service.hosts``) and their control
  APIs are reached through a loopback bridge, off the faulty link.
- Every fault has a TTL where it lives: an nft set timeout in the kernel,
  the guard's timer for a qdisc, the relay's own clock. Injecting a kind
  already live on a direction is refused (clear it first).
- A fault's counters are read back from where it acted (nft rule counters,
  the relay's tallies, the qdisc's) and kept when it is cleared, so a probe
  after the clear still has them.
- Teardown runs whatever happened: relay, bridges, client runtime, the
  namespaces (and whatever still runs in them), then the guard is released.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from chaosagenkit.exceptions import ConfigurationError, ProcessStartError, TargetError
from chaosagenkit.kernel import nft, tc
from chaosagenkit.kernel.bridge import NamespaceBridge
from chaosagenkit.kernel.counters import TCP_EVIDENCE, delta, parse_snmp, parse_tcp_table
from chaosagenkit.kernel.faults import Fault, FaultSpec, check_fault, mechanism_for
from chaosagenkit.kernel.guard import remove_state, sweep_stale, write_state
from chaosagenkit.kernel.system import (
    NETNS_DIR,
    KernelError,
    KernelUnavailable,
    in_namespace,
    list_namespaces,
    netem_available,
    read_proc_net,
    remove_namespaces,
    run,
    run_all,
    tun_unavailable_reason,
    unavailable_reason,
)
from chaosagenkit.kernel.topology import (
    CALLERS,
    QUIET_SYSCTLS,
    SIDES,
    TABLE,
    TARGET,
    Command,
    Topology,
    new_run_id,
)
from chaosagenkit.sandbox import SANDBOX
from chaosagenkit.seeds import derive_seed
from chaosagenkit.validation import require_known_keys

__all__ = [
    "NETWORKS",
    "NETWORK_SPEC_KEYS",
    "KernelNetwork",
    "build_from_spec",
    "get_network",
    "teardown_all",
]

logger = logging.getLogger("chaostoolkit")

#: Keys a ``network`` declaration in the control may use.
NETWORK_SPEC_KEYS = ("name", "link", "sysctls", "seed")
DEFAULT_NAME = "network"
READY_TIMEOUT_S = 15.0
RELAY_TIMEOUT_S = 5.0
_SYSCTL = re.compile(r"^net\.[a-z0-9_]+(\.[a-z0-9_]+)+$")

_lock = threading.RLock()
#: The kernel networks of this process's run, by name.
NETWORKS: dict[str, KernelNetwork] = {}


@dataclass
class _Injected:
    fault: Fault
    mechanism: str
    deadline: float  # time.monotonic()
    detail: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] | None = None  # counters captured when cleared


class _Child:
    """A helper process of the network (guard, relay) talking JSON lines over its stdin/stdout."""

    def __init__(self, label: str, argv: list[str], *, new_session: bool = False) -> None:
        self.label = label
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in stop()
        self._lock = threading.Lock()
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=new_session,
            )
        except OSError as e:
            self._stderr.close()
            raise ProcessStartError(f"cannot start the {label}: {e}") from e
        try:
            self.ready = self._line(READY_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.send(message)
            answer = self._line(RELAY_TIMEOUT_S)
        if not answer.get("ok"):
            raise KernelError(f"the {self.label} refused {message.get('op')}: {answer.get('error')}")
        return answer

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except OSError as e:
            raise KernelError(f"the {self.label} is gone: {e}") from e

    def stop(self, message: dict[str, Any] | None = None) -> None:
        """Send ``message`` (if any), close its stdin (its signal to leave), wait; kill if it lingers."""
        if message is not None and self.process.poll() is None:
            try:
                self.send(message)
            except KernelError:
                pass
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            self.process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()

    def _line(self, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([fd], [], [], max(0.0, remaining))
            if not readable:
                raise KernelError(f"the {self.label} did not answer within {timeout_s:g} s{self._tail()}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise KernelError(f"the {self.label} exited (status {self.process.wait()}){self._tail()}")
            buffer += chunk
        return json.loads(buffer.split(b"\n", 1)[0])

    def _tail(self) -> str:
        try:
            self._stderr.seek(0)
            lines = [x for x in self._stderr.read().decode(errors="replace").splitlines() if x.strip()]
        except (OSError, ValueError):
            return ""
        return f": {lines[-1].strip()}" if lines else ""


class KernelNetwork:
    """Two namespaces of this run, the link between them, and the faults on it."""

    def __init__(self, name: str, link: str = "veth", seed: int = 0, sysctls: dict[str, int] | None = None):
        self.name = name
        self.topology = Topology(new_run_id(), link)
        self.seed = seed
        self.sysctls = dict(sysctls or {})
        self.netem = False
        self._guard: _Child | None = None
        self._relay: _Child | None = None
        self._state_file: str | None = None
        self._bridges: dict[tuple[str, int], NamespaceBridge] = {}
        self._faults: dict[str, _Injected] = {}
        self._ids = itertools.count(1)
        self._marks: dict[str, dict[str, dict[str, int]]] = {}  # "start"/"fault" -> side -> counters
        self._entered_runtime = False
        self._lock = threading.RLock()

    # -- build and teardown --------------------------------------------------------

    def build(self) -> None:
        """Create everything; on any failure, remove what was created and raise."""
        reason = unavailable_reason() or (tun_unavailable_reason() if self.topology.link == "relay" else None)
        if reason:
            raise KernelUnavailable(reason)
        try:
            swept = sweep_stale()
            if swept:
                logger.info(f"chaosagenkit: removed namespaces of dead runs: {', '.join(swept)}")
            self._state_file = write_state(self.topology.run_id, list(self.topology.namespaces))
            self._guard = _Child(
                "guard",
                [sys.executable, "-m", "chaosagenkit.kernel.guard", "--state", self._state_file],
                new_session=True,
            )
            run_all(self.topology.namespace_commands())
            for ns in self.topology.namespaces:
                for key, value in {**QUIET_SYSCTLS, **self.sysctls}.items():
                    _write_sysctl(ns, key, value)
            run_all(self.topology.link_commands())
            if self.topology.link == "relay":
                callers, target = self.topology.namespaces
                self._relay = _Child(
                    "relay",
                    [
                        sys.executable,
                        "-m",
                        "chaosagenkit.kernel.relay",
                        "--callers",
                        callers,
                        "--target",
                        target,
                        "--seed",
                        str(derive_seed(self.seed, f"relay:{self.name}")),
                    ],
                )
                run_all(self.topology.relay_address_commands())
            self.netem = netem_available(self.topology.namespace(TARGET))
            self._marks["start"] = self._marks["fault"] = {side: self._counters(side) for side in SIDES}
            self._enter_callers()
        except BaseException:
            self.teardown()
            raise
        SANDBOX.record_event(
            "network",
            self.name,
            namespaces=list(self.topology.namespaces),
            link=self.topology.link,
            netem=self.netem,
        )

    def teardown(self) -> list[str]:
        """Remove everything this network created; return what could not be removed."""
        problems = []
        with self._lock:
            if self._relay is not None:
                self._relay.stop()
                self._relay = None
            for bridge in self._bridges.values():
                bridge.close()
            self._bridges.clear()
            if self._entered_runtime:
                # Imported on use: ~60 ms of imports only this path needs.
                from chaosagenkit.client.runtime import RUNTIME

                RUNTIME.set_network_namespace(None)  # back home: stops the thread in the callers' namespace
                self._entered_runtime = False
            remove_namespaces(list(self.topology.namespaces))

            left = sorted(set(self.topology.namespaces) & set(list_namespaces()))
            if left:
                problems.append(f"namespaces still present: {', '.join(left)}")
            if self._guard is not None:
                self._guard.stop({"op": "release"} if not left else None)
                self._guard = None
            if self._state_file and not left:
                remove_state(self._state_file)
        return problems

    def placement(self, side: str) -> Any:
        """Where a server declared with ``"namespace": side`` runs (see service.hosts.Placement)."""
        # Imported on use: it loads aiohttp and chaoslib; other paths here never need it.
        from chaosagenkit.service.hosts import Placement

        namespace = self.topology.namespace(side)
        return Placement(
            command_prefix=("ip", "netns", "exec", namespace),
            host=self.topology.address(side),
            reach_control=lambda url: self._bridge(namespace, url),
        )

    # -- faults ----------------------------------------------------------------------

    def inject(self, spec: FaultSpec, direction: str, ttl_s: float) -> dict[str, Any]:
        """Apply ``spec`` to the packets of ``direction`` for ``ttl_s`` seconds; describe the fault."""
        check_fault(direction, ttl_s)
        mechanism = mechanism_for(spec.kind, link=self.topology.link, netem=self.netem)
        with self._lock:
            fault = Fault(f"f{next(self._ids)}", spec, direction, float(ttl_s))
            self._refuse_duplicate(fault)
            injected = _Injected(fault, mechanism, time.monotonic() + fault.ttl_s)
            self._marks["fault"] = {side: self._counters(side) for side in SIDES}
            if mechanism == "nft":
                self._nft_add(injected)
            elif mechanism == "relay":
                assert self._relay is not None
                for d in fault.directions():
                    self._relay.request(
                        {
                            "op": "add",
                            "id": f"{fault.id}/{d}",
                            "direction": d,
                            "fault": spec.to_dict(),
                            "ttl_s": ttl_s,
                        }
                    )
            self._faults[fault.id] = injected
            if mechanism in ("tbf", "netem"):
                try:
                    self._tc_apply(fault.directions())
                except BaseException:
                    del self._faults[fault.id]
                    raise
        SANDBOX.record_event(
            "inject",
            self.name,
            kind=spec.kind,
            fault_id=fault.id,
            duration_s=fault.ttl_s,
            direction=direction,
            mechanism=mechanism,
            **{k: v for k, v in spec.to_dict().items() if k != "kind"},
            **injected.detail,
        )
        return self._describe(injected)

    def clear(self, fault_id: str | None = None) -> list[str]:
        """Remove one fault (or all); return the ids removed. Their counters are kept."""
        with self._lock:
            ids = list(self._faults) if fault_id is None else [fault_id]
            unknown = [i for i in ids if i not in self._faults]
            if unknown:
                raise ConfigurationError(
                    "fault", f"must be a fault of network {self.name!r}, got {unknown[0]!r}"
                )
            removed = []
            for i in ids:
                injected = self._faults[i]
                if injected.final is not None:
                    continue
                injected.final = self._stats(injected)
                self._remove(injected)
                removed.append(i)
        if removed:
            SANDBOX.record_event("clear", self.name, removed=removed)
        return removed

    def faults(self) -> list[dict[str, Any]]:
        """Every fault injected in this run, with its counters and whether it is still live."""
        with self._lock:
            return [self._describe(i) for i in self._faults.values()]

    def fault_stats(self, fault_id: str | None = None) -> dict[str, Any]:
        """One fault's description and counters (default: the last one injected)."""
        with self._lock:
            if not self._faults:
                raise ConfigurationError("fault", f"network {self.name!r} has no fault yet")
            key = fault_id or list(self._faults)[-1]
            if key not in self._faults:
                raise ConfigurationError("fault", f"must be a fault of network {self.name!r}, got {key!r}")
            return self._describe(self._faults[key])

    def relay_stats(self) -> dict[str, Any]:
        """The relay's own tallies per direction and its pid (``link: relay`` only)."""
        if self._relay is None:
            raise ConfigurationError("network", f"network {self.name!r} has no relay (declare link 'relay')")
        return {"pid": self._relay.process.pid, **self._relay.request({"op": "stats"})}

    # -- the kernel's view ---------------------------------------------------------

    def tcp_counters(self, side: str, since: str = "fault") -> dict[str, int]:
        """The kernel's TCP counters of ``side``'s namespace: change since the last fault, or "start"."""
        if since not in self._marks:
            raise ConfigurationError("since", f"must be 'fault' or 'start', got {since!r}")
        self.topology.namespace(side)
        return delta(self._marks[since][side], self._counters(side), TCP_EVIDENCE)

    def tcp_connections(self, side: str) -> list[dict[str, Any]]:
        """The TCP sockets of ``side``'s namespace (listeners left out), from /proc/net/tcp."""
        (table,) = read_proc_net(self.topology.namespace(side), ("tcp",))
        return parse_tcp_table(table)

    # -- internals -----------------------------------------------------------------------

    def _counters(self, side: str) -> dict[str, int]:
        return parse_snmp(*read_proc_net(self.topology.namespace(side), ("snmp", "netstat")))

    def _enter_callers(self) -> None:
        # Imported on use: ~60 ms of imports only this path needs.
        from chaosagenkit.client.runtime import RUNTIME

        # The runtime re-enters it on every (re)start of its loop thread: no client can fall back
        # to the host's namespace, from which the run's addresses would leave the machine.
        RUNTIME.set_network_namespace(os.path.join(NETNS_DIR, self.topology.namespace(CALLERS)))
        self._entered_runtime = True

    def _bridge(self, namespace: str, control_url: str) -> str:
        port = int(control_url.rstrip("/").rsplit(":", 1)[1])
        with self._lock:
            bridge = self._bridges.get((namespace, port))
            if bridge is None:
                bridge = self._bridges[(namespace, port)] = NamespaceBridge(namespace, port)
        return bridge.url()

    def _refuse_duplicate(self, fault: Fault) -> None:
        now = time.monotonic()
        for other in self._faults.values():
            same = other.fault.spec.kind == fault.spec.kind and set(other.fault.directions()) & set(
                fault.directions()
            )
            if not same or other.final is not None:
                continue
            if other.deadline > now:
                raise ConfigurationError(
                    "kind",
                    f"a {fault.spec.kind} fault ({other.fault.id}) is already live on {other.fault.direction}: "
                    "clear it first",
                )
            other.final = self._stats(other)  # expired: take its rules away before the new one
            self._remove(other)

    def _nft_add(self, injected: _Injected) -> None:
        fault = injected.fault
        for d in fault.directions():
            side = self.topology.receiving_side(d)
            pattern: tuple[int, ...] = ()
            if fault.spec.kind == "loss":
                rng = random.Random(derive_seed(self.seed, f"{self.name}:{fault.id}:{d}"))
                pattern = nft.loss_pattern(fault.spec.loss_rate, fault.spec.correlation, rng)
                injected.detail[f"pattern_loss_rate_{d}"] = len(pattern) / nft.PATTERN_PERIOD
            live_ids = self._nft_ids(side)
            script = nft.add_fault_script(fault.id, fault.spec, fault.ttl_s, pattern, live_ids)
            self._nft(side, script)

    def _nft_ids(self, side: str, without: str = "") -> list[str]:
        return [
            i
            for i, other in self._faults.items()
            if other.mechanism == "nft"
            and other.final is None
            and i != without
            and side in {self.topology.receiving_side(d) for d in other.fault.directions()}
        ]

    def _nft(self, side: str, script: str) -> str:
        return run(
            Command(("ip", "netns", "exec", self.topology.namespace(side), "nft", "-f", "-"), stdin=script)
        )

    def _nft_list(self, side: str, kind: str, name: str) -> str:
        """``nft -j list chain|set inet chaosagenkit NAME`` in ``side``'s namespace (JSON)."""
        namespace = self.topology.namespace(side)
        return run(
            Command(("ip", "netns", "exec", namespace, "nft", "-j", "list", kind, "inet", TABLE, name))
        )

    def _tc_apply(self, directions: tuple[str, ...]) -> None:
        """Rebuild the qdisc tree of each sending side of ``directions``; hand its expiries to the guard."""
        now = time.monotonic()
        for d in directions:
            side = self.topology.sending_side(d)
            namespace = self.topology.namespace(side)
            live = [
                (i.fault.spec, i.deadline)
                for i in self._faults.values()
                if i.mechanism in ("tbf", "netem")
                and i.final is None
                and side in {self.topology.sending_side(x) for x in i.fault.directions()}
            ]
            run_all(tc.qdisc_commands(namespace, [spec for spec, deadline in live if deadline > now]))
            schedule = tc.expiry_schedule(namespace, live, now)
            if self._guard is not None:
                self._guard.send(
                    {
                        "op": "schedule",
                        "key": f"tc:{namespace}",
                        "entries": [
                            {"after_s": after, "commands": [_command_json(c) for c in commands]}
                            for after, commands in schedule
                        ],
                    }
                )

    def _remove(self, injected: _Injected) -> None:
        fault = injected.fault
        if injected.mechanism == "nft":
            for side in {self.topology.receiving_side(d) for d in fault.directions()}:
                self._nft(side, nft.remove_fault_script(fault.id, self._nft_ids(side, without=fault.id)))
        elif injected.mechanism == "relay" and self._relay is not None:
            for d in fault.directions():
                self._relay.request({"op": "remove", "id": f"{fault.id}/{d}"})
        elif injected.mechanism in ("tbf", "netem"):
            self._tc_apply(fault.directions())

    def _stats(self, injected: _Injected) -> dict[str, Any]:
        """``seen`` (packets that met the fault) and ``acted`` (packets it acted on), and ``live``."""
        fault = injected.fault
        seen = acted = 0
        live = injected.deadline > time.monotonic()
        if injected.mechanism == "nft":
            live = False
            for side in {self.topology.receiving_side(d) for d in fault.directions()}:
                counters = nft.chain_counters(self._nft_list(side, "chain", fault.id))
                seen, acted = seen + counters["seen"], acted + counters["acted"]
                live = live or nft.live(self._nft_list(side, "set", f"live_{fault.id}"))
        elif injected.mechanism == "relay" and self._relay is not None:
            faults = self._relay.request({"op": "stats"})["faults"]
            for d in fault.directions():
                counts = faults.get(f"{fault.id}/{d}", {})
                seen, acted = seen + counts.get("seen", 0), acted + counts.get("acted", 0)
        elif injected.mechanism in ("tbf", "netem"):
            for d in fault.directions():
                counts = self._qdisc_counts(self.topology.sending_side(d))
                seen, acted = seen + counts["seen"], acted + counts["acted"]
        return {"seen": seen, "acted": acted, "live": live}

    def _qdisc_counts(self, side: str) -> dict[str, int]:
        """tc's own counters of the device's qdiscs: packets sent (seen), and dropped or delayed (acted)."""
        listing = run(
            Command(("tc", "-n", self.topology.namespace(side), "-s", "-j", "qdisc", "show", "dev", "cak0"))
        )
        seen = acted = 0
        for qdisc in json.loads(listing or "[]"):
            if qdisc.get("kind") in ("tbf", "netem"):
                seen = max(seen, int(qdisc.get("packets", 0)))
                acted += int(qdisc.get("drops", 0)) + int(qdisc.get("overlimits", 0))
        return {"seen": seen, "acted": acted}

    def _describe(self, injected: _Injected) -> dict[str, Any]:
        fault = injected.fault
        stats = injected.final if injected.final is not None else self._stats(injected)
        return {
            "id": fault.id,
            **fault.spec.to_dict(),
            "direction": fault.direction,
            "duration_s": fault.ttl_s,
            "mechanism": injected.mechanism,
            **injected.detail,
            "seen": stats.get("seen", 0),
            "acted": stats.get("acted", 0),
            "live": bool(stats.get("live")) and injected.final is None,
        }


# -- the run's registry ----------------------------------------------------------------


def build_from_spec(spec: dict[str, Any]) -> KernelNetwork:
    """Build the network a control declaration describes; register its namespaces as placements."""
    if not isinstance(spec, dict):
        raise ConfigurationError("network", f"must be an object, got {spec!r}")
    require_known_keys(spec, NETWORK_SPEC_KEYS, "a network field")
    name = spec.get("name") or DEFAULT_NAME
    if not isinstance(name, str):
        raise ConfigurationError("name", f"must be a string, got {name!r}")
    sysctls = spec.get("sysctls") or {}
    if not isinstance(sysctls, dict):
        raise ConfigurationError("sysctls", f"must be an object of NAME: value, got {sysctls!r}")
    for key, value in sysctls.items():
        if not _SYSCTL.match(str(key)):
            raise ConfigurationError(
                "sysctls", f"names only net.* sysctls of the run's namespaces, got {key!r}"
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"sysctls.{key}", f"must be an integer, got {value!r}")
    # Imported on use: it loads aiohttp and chaoslib; other paths here never need it.
    from chaosagenkit.activity import seed_or_none
    from chaosagenkit.service.hosts import PLACEMENTS

    seed = seed_or_none(spec.get("seed"))
    if seed is None:
        seed = SANDBOX.component_seed(f"network:{name}") or 0
    with _lock:
        if NETWORKS:
            raise ConfigurationError("network", f"a run has one kernel network; {', '.join(NETWORKS)} exists")
        network = KernelNetwork(name, link=spec.get("link") or "veth", seed=seed, sysctls=sysctls)
        network.build()
        NETWORKS[name] = network
        for side in SIDES:
            PLACEMENTS[side] = network.placement(side)
    return network


def get_network(name: str) -> KernelNetwork:
    with _lock:
        network = NETWORKS.get(name)
    if network is None:
        known = ", ".join(sorted(NETWORKS)) or "none: declare a `network` in the chaosagenkit control"
        raise ConfigurationError("network", f"must be a kernel network of this run ({known}), got {name!r}")
    return network


def teardown_all() -> list[str]:
    """Tear down every kernel network of the run; raise ``TargetError`` naming what is left."""
    # Imported on use: it loads aiohttp and chaoslib; other paths here never need it.
    from chaosagenkit.service.hosts import PLACEMENTS

    problems = []
    with _lock:
        networks = list(NETWORKS.values())
        NETWORKS.clear()
        for side in SIDES:
            PLACEMENTS.pop(side, None)
    for network in networks:
        problems += network.teardown()
        SANDBOX.record_event("network_deleted", network.name)
    if problems:
        raise TargetError("; ".join(problems))
    return [n.name for n in networks]


def _write_sysctl(namespace: str, key: str, value: int) -> None:
    path = "/proc/sys/" + key.replace(".", "/")

    def write() -> None:
        with open(path, "w") as f:
            f.write(str(value))

    try:
        in_namespace(namespace, write)
    except OSError as e:
        raise ConfigurationError("sysctls", f"cannot set {key} in the run's namespace: {e}") from e


def _command_json(command: Command) -> dict[str, Any]:
    return {"argv": list(command.argv), "stdin": command.stdin, "may_fail": command.may_fail}
