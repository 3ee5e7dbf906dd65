"""A topology's own network namespace, with its own DNS: where name resolution can fail safely.

A topology declared with ``"namespace": {...}`` runs every host inside one
network namespace the run creates (the design of chaosagenkit.kernel's
network: a run-id name, hosts under ``ip netns exec``, control APIs reached
through loopback bridges, the client runtime's thread entered into the
namespace, teardown whatever happens). Rules kept here:

- The namespace has only its own loopback: nothing inside it can send a
  packet off the machine, whatever its resolver is told.
- ``ip netns exec`` bind-mounts ``/etc/netns/NAME/*`` over ``/etc``:
  ``resolv.conf`` names only 127.0.0.1 (the run's responder,
  ``chaosagenkit.topology.dns``, inside the namespace), ``nsswitch.conf``
  says ``hosts: files dns`` (no systemd-resolved, no mDNS), ``hosts`` only
  localhost. A machine running nscd is refused: glibc would ask nscd, outside
  the namespace, before any of this.
- DNS faults live in a file the responder re-reads; each has an expiry.
- ``unavailable_reason`` says why the machine cannot (not root, no ``ip``,
  nscd running) so experiments and tests skip with that line.
- Teardown: responder, bridges, the namespace, its ``/etc/netns`` folder and
  faults file; namespaces of dead runs (their owner pid gone) are swept
  when a new one is made.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaosagenkit.exceptions import ConfigurationError, ProcessStartError, TargetError
from chaosagenkit.topology.dns import DNS_MODES

__all__ = ["NAMESPACE_KEYS", "DnsNamespace", "unavailable_reason"]

logger = logging.getLogger("chaostoolkit")

NAMESPACE_KEYS = ("dns_zone", "resolver_timeout_s")
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
STATE_DIR = Path("/run/chaosagenkit-topology")
NSCD_SOCKETS = (Path("/var/run/nscd/socket"), Path("/run/nscd/socket"))
_NAME = re.compile(r"^chaosagenkit-([0-9a-f]{8})-dns$")
_CHUNK = 65536


def unavailable_reason() -> str | None:
    """Why this machine cannot give a topology its own namespace and DNS, or None."""
    if os.geteuid() != 0:
        return "a network namespace with its own resolver needs root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    if any(path.exists() for path in NSCD_SOCKETS):
        return "nscd runs on this machine: glibc would resolve through it, outside the namespace"
    return None


class DnsNamespace:
    """One network namespace of the run: loopback, a DNS responder, bridges to control APIs."""

    def __init__(self, spec: dict[str, Any]) -> None:
        unknown = sorted(set(spec) - set(NAMESPACE_KEYS))
        if unknown:
            raise ConfigurationError(
                f"topology.namespace.{unknown[0]}", f"is not a field (known: {', '.join(NAMESPACE_KEYS)})"
            )
        self.zone = str(spec.get("dns_zone") or "chaos.test").strip(".").lower()
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", self.zone):
            raise ConfigurationError(
                "topology.namespace.dns_zone", f"must be a DNS name like chaos.test, got {self.zone!r}"
            )
        timeout = spec.get("resolver_timeout_s", 2)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 30:
            raise ConfigurationError(
                "topology.namespace.resolver_timeout_s", f"must be an integer from 1 to 30, got {timeout!r}"
            )
        self.resolver_timeout_s = timeout
        self.name = f"chaosagenkit-{secrets.token_hex(4)}-dns"
        self.faults_path = STATE_DIR / f"{self.name}.faults.json"
        self._responder: subprocess.Popen[bytes] | None = None
        self._bridges: dict[int, _Bridge] = {}
        self._lock = threading.Lock()
        self.faults: dict[str, dict[str, Any]] = {}

    # -- build and tear down -------------------------------------------------------------

    def build(self) -> None:
        """Make the namespace, its /etc files and responder; enter the client runtime into it."""
        reason = unavailable_reason()
        if reason:
            raise TargetError(f"topology namespace: {reason}")
        _sweep_dead_runs()
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        (STATE_DIR / f"{self.name}.owner").write_text(str(os.getpid()))
        self._write_faults()
        try:
            _run(["ip", "netns", "add", self.name])
            _run(["ip", "-n", self.name, "link", "set", "lo", "up"])
            etc = ETC_NETNS / self.name
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(
                f"# chaosagenkit: this namespace's only resolver\nnameserver 127.0.0.1\n"
                f"options timeout:{self.resolver_timeout_s} attempts:1\n"
            )
            (etc / "nsswitch.conf").write_text("hosts: files dns\n")
            (etc / "hosts").write_text("127.0.0.1 localhost\n")
            self._start_responder()
            self._enter_client_runtime()
        except BaseException:
            self.teardown()
            raise

    def teardown(self) -> None:
        """Stop the responder, close bridges, delete the namespace and its files (idempotent)."""
        if self._responder is not None:
            # Imported on use: ~40 ms of imports only this path needs.
            from chaosagenkit.supervisor import stop

            stop(self._responder)
            self._responder = None
        with self._lock:
            bridges = list(self._bridges.values())
            self._bridges.clear()
        for bridge in bridges:
            bridge.close()
        _remove(self.name)

    # -- what hosts and clients need ------------------------------------------------------

    @property
    def command_prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.name)

    def reach_control(self, control_url: str) -> str:
        """A control URL inside the namespace -> a loopback bridge's URL here."""
        port = int(control_url.rstrip("/").rsplit(":", 1)[1])
        with self._lock:
            bridge = self._bridges.get(port)
            if bridge is None:
                bridge = self._bridges[port] = _Bridge(self.name, port)
        return f"http://127.0.0.1:{bridge.port}"

    def host_name(self, host: str) -> str:
        return f"{host.replace('_', '-')}.{self.zone}"

    # -- DNS faults ----------------------------------------------------------------------

    def inject(self, name: str, mode: str, duration_s: float, host: str = "") -> dict[str, Any]:

        if mode not in DNS_MODES:
            raise ConfigurationError("mode", f"must be one of {', '.join(DNS_MODES)}, got {mode!r}")
        name = name.lower().strip(".")
        if not name.endswith("." + self.zone):
            raise ConfigurationError("name", f"must be a name in the zone {self.zone!r}, got {name!r}")
        fault = {"mode": mode, "expires_at": round(time.time() + duration_s, 3), "host": host}
        with self._lock:
            self.faults[name] = fault
            self._write_faults()
        return {"name": name, **fault}

    def clear(self) -> dict[str, str]:
        """Clear every DNS fault; returns name -> the host it named."""
        with self._lock:
            cleared = {name: str(fault.get("host") or "") for name, fault in sorted(self.faults.items())}
            self.faults.clear()
            self._write_faults()
        return cleared

    # -- internals -----------------------------------------------------------------------

    def _write_faults(self) -> None:
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=STATE_DIR, prefix=".faults-")
        with os.fdopen(fd, "w") as f:
            json.dump(self.faults, f)
        os.replace(temporary, self.faults_path)  # the responder never reads half a file

    def _start_responder(self) -> None:
        argv = [
            *self.command_prefix, sys.executable, "-m", "chaosagenkit.topology.dns",
            "--listen", "127.0.0.1:53", "--zone", self.zone, "--faults", str(self.faults_path),
        ]  # fmt: skip
        self._responder = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self._responder.stdout is not None
        line = self._responder.stdout.readline()
        if not line.startswith(b'{"event": "ready"'):
            error = (
                self._responder.stderr.read().decode(errors="replace")[-300:]
                if self._responder.stderr
                else ""
            )
            raise ProcessStartError(f"the namespace's DNS responder did not start: {error or line!r}")
        self._responder.stdout.close()

    def _enter_client_runtime(self) -> None:
        """Clients call from inside: their sockets are born in the namespace."""
        # Imported on use: ~80 ms of imports only this path needs.
        from chaosagenkit.client.runtime import RUNTIME

        name = self.name

        def enter() -> None:
            fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.setns(fd, os.CLONE_NEWNET)
            finally:
                os.close(fd)

        RUNTIME.stop()  # a fresh loop thread, so no thread it started earlier stays outside
        RUNTIME.call(enter)


class _Bridge:
    """127.0.0.1:port here -> 127.0.0.1:target_port inside the namespace (control APIs only)."""

    def __init__(self, namespace: str, target_port: int) -> None:
        self.namespace = namespace
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"bridge-{namespace}", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets = [self._listener, *self._sockets]
            self._sockets.clear()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = _in_namespace(
                self.namespace,
                lambda: socket.create_connection(("127.0.0.1", self.target_port), timeout=10.0),
            )
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            if self._closed:
                client.close()
                upstream.close()
                return
            self._sockets.update((client, upstream))
        forward = threading.Thread(target=_copy, args=(client, upstream), daemon=True)
        forward.start()
        _copy(upstream, client)
        forward.join()
        with self._lock:
            self._sockets.difference_update((client, upstream))
        client.close()
        upstream.close()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _in_namespace[T](namespace: str, func: Callable[[], T]) -> T:
    """Run ``func()`` in a fresh thread that entered ``namespace``; its result or its error."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            fd = os.open(NETNS_DIR / namespace, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.setns(fd, os.CLONE_NEWNET)
            finally:
                os.close(fd)
            outcome["value"] = func()
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise TargetError(f"{' '.join(argv)} failed: {result.stderr.strip()[:200]}")


def _remove(name: str) -> None:
    """Delete a namespace of ours, its /etc/netns folder and state files; never raises."""
    if not _NAME.match(name):
        return
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    shutil.rmtree(ETC_NETNS / name, ignore_errors=True)
    for suffix in (".faults.json", ".owner"):
        (STATE_DIR / f"{name}{suffix}").unlink(missing_ok=True)


def _sweep_dead_runs() -> None:
    """Remove the namespaces of runs whose chaos process is gone (SIGKILL leaves them)."""
    if not STATE_DIR.exists():
        return
    for owner in STATE_DIR.glob("chaosagenkit-*-dns.owner"):
        name = owner.name.removesuffix(".owner")
        try:
            os.kill(int(owner.read_text()), 0)
        except (OSError, ValueError):
            logger.warning(f"chaosagenkit: removing namespace {name} of a run that is gone")
            _remove(name)
