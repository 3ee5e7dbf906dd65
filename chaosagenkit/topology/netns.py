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
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from chaosagenkit.exceptions import ConfigurationError, ProcessStartError, TargetError
from chaosagenkit.kernel.bridge import NamespaceBridge
from chaosagenkit.topology.dns import DNS_MODES
from chaosagenkit.validation import require_known_keys

__all__ = ["NAMESPACE_KEYS", "DnsNamespace", "unavailable_reason"]

logger = logging.getLogger("chaostoolkit")

NAMESPACE_KEYS = ("dns_zone", "resolver_timeout_s")
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
STATE_DIR = Path("/run/chaosagenkit-topology")
NSCD_SOCKETS = (Path("/var/run/nscd/socket"), Path("/run/nscd/socket"))
_NAME = re.compile(r"^chaosagenkit-([0-9a-f]{8})-dns$")


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
        require_known_keys(spec, NAMESPACE_KEYS, "a field", prefix="topology.namespace.")
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
        self._bridges: dict[int, NamespaceBridge] = {}
        self._lock = threading.Lock()
        self._entered_runtime = False
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
        if self._entered_runtime:
            # Imported on use: ~80 ms of imports only this path needs.
            from chaosagenkit.client.runtime import RUNTIME

            RUNTIME.set_network_namespace(None)  # back home: the loop thread leaves the namespace
            self._entered_runtime = False
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
                bridge = self._bridges[port] = NamespaceBridge(self.name, port)
        return bridge.url()

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
        """Clients call from inside: the client runtime's loop thread runs in the namespace.

        The same way as the kernel's network: every (re)start of the loop enters it.
        """
        # Imported on use: ~80 ms of imports only this path needs.
        from chaosagenkit.client.runtime import RUNTIME

        RUNTIME.set_network_namespace(str(NETNS_DIR / self.name))
        self._entered_runtime = True


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
