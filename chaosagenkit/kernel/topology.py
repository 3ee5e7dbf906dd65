"""The run's network: two namespaces, one link, their names and addresses, as commands to run.

Layout (a design rule of the kernel package)::

    chaosagenkit-<run>-callers            chaosagenkit-<run>-target
    the run's clients (a thread of the    the target (``chaosagenkit serve``
    chaos process entered this netns)     under ``ip netns exec``)
        cak0  198.18.0.1  <---- link ---->  198.18.0.2  cak0

- Both namespaces are created by the run, named after a random run id so
  parallel runs never collide; the link's two ends are created directly
  inside them (``ip link add ... netns``), so nothing is ever added to,
  or changed in, the namespace the chaos process runs in.
- ``link: veth``: a veth pair; ``link: relay``: two TUN devices, one per
  namespace, whose packets the relay process (``chaosagenkit.kernel.relay``)
  carries across, deciding each packet's fate in user space.
- Addresses come from 198.18.0.0/15 (RFC 2544, reserved for benchmarking
  interconnects): they are never routed, and each run has its own copy
  because they live inside its own namespaces.
- Every namespace gets the same empty nftables table (``inet chaosagenkit``,
  a prerouting chain at raw priority): faults add chains to it.

Nothing here runs a command: ``Command`` lists are run by ``system.run``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.kernel.faults import LINKS

__all__ = [
    "CALLERS",
    "CALLERS_ADDRESS",
    "DEVICE",
    "NAMESPACE_PREFIX",
    "QUIET_SYSCTLS",
    "SIDES",
    "TABLE",
    "TARGET",
    "TARGET_ADDRESS",
    "Command",
    "Topology",
    "new_run_id",
    "run_id_of",
]

NAMESPACE_PREFIX = "chaosagenkit-"
CALLERS = "callers"
TARGET = "target"
SIDES = (CALLERS, TARGET)
DEVICE = "cak0"
CALLERS_ADDRESS = "198.18.0.1"
TARGET_ADDRESS = "198.18.0.2"
PREFIX_LENGTH = 30
#: Set in both namespaces before the link exists: no IPv6 neighbour discovery or MLD packet
#: ever crosses the link, so every packet a fault sees is the run's own traffic.
QUIET_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1}
TABLE = "chaosagenkit"
MTU = 1500
_RUN_ID = re.compile(r"^[0-9a-f]{8}$")
_NAMESPACE = re.compile(rf"^{NAMESPACE_PREFIX}([0-9a-f]{{8}})-({CALLERS}|{TARGET})$")

#: The table every namespace of a run starts with: faults add their chains and jumps.
BASE_TABLE = f"""table inet {TABLE} {{
  chain prerouting {{
    type filter hook prerouting priority raw; policy accept;
    jump faults
  }}
  chain faults {{
  }}
}}
"""


@dataclass(frozen=True)
class Command:
    """One command line, with what it reads on stdin; ``may_fail``: its failure changes nothing."""

    argv: tuple[str, ...]
    stdin: str | None = None
    may_fail: bool = False


def new_run_id() -> str:
    """A fresh random run id (8 hex digits): names stay unique across parallel runs."""
    return secrets.token_hex(4)


def run_id_of(namespace: str) -> str | None:
    """The run id in a namespace name this package made, else None (never ours to touch)."""
    match = _NAMESPACE.match(namespace)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Topology:
    """The names, addresses and set-up commands of one run's network."""

    run_id: str
    link: str = "veth"

    def __post_init__(self) -> None:
        if not _RUN_ID.match(self.run_id):
            raise ConfigurationError("run_id", f"must be 8 hex digits, got {self.run_id!r}")
        if self.link not in LINKS:
            raise ConfigurationError("link", f"must be one of {', '.join(LINKS)}, got {self.link!r}")

    def namespace(self, side: str) -> str:
        """The namespace of ``side`` ("callers" or "target")."""
        if side not in SIDES:
            raise ConfigurationError("namespace", f"must be one of {', '.join(SIDES)}, got {side!r}")
        return f"{NAMESPACE_PREFIX}{self.run_id}-{side}"

    @property
    def namespaces(self) -> tuple[str, str]:
        return (self.namespace(CALLERS), self.namespace(TARGET))

    @staticmethod
    def address(side: str) -> str:
        return CALLERS_ADDRESS if side == CALLERS else TARGET_ADDRESS

    @staticmethod
    def receiving_side(direction: str) -> str:
        """The side whose namespace receives the packets of a one-way ``direction``."""
        return TARGET if direction == "to_target" else CALLERS

    @staticmethod
    def sending_side(direction: str) -> str:
        return CALLERS if direction == "to_target" else TARGET

    def create_commands(self) -> list[Command]:
        """Everything ``namespace_commands`` then ``link_commands`` create."""
        return self.namespace_commands() + self.link_commands()

    def namespace_commands(self) -> list[Command]:
        """The two namespaces with their loopback up."""
        commands = [Command(("ip", "netns", "add", ns)) for ns in self.namespaces]
        return commands + [Command(("ip", "-n", ns, "link", "set", "lo", "up")) for ns in self.namespaces]

    def link_commands(self) -> list[Command]:
        """The veth link and its addresses (``link: veth``), and the base nft table of each side."""
        callers, target = self.namespaces
        commands = []
        if self.link == "veth":
            commands.append(
                Command(
                    (
                        "ip",
                        "link",
                        "add",
                        DEVICE,
                        "netns",
                        callers,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        DEVICE,
                        "netns",
                        target,
                    )
                )
            )
            for side in SIDES:
                commands += self._address_commands(side, f"{self.address(side)}/{PREFIX_LENGTH}")
        for ns in self.namespaces:
            commands.append(Command(("ip", "netns", "exec", ns, "nft", "-f", "-"), stdin=BASE_TABLE))
        return commands

    def relay_address_commands(self) -> list[Command]:
        """Point-to-point addresses on the relay's TUN devices, once the relay created them."""
        commands = []
        for side in SIDES:
            peer = self.address(TARGET if side == CALLERS else CALLERS)
            commands += self._address_commands(side, self.address(side), ("peer", f"{peer}/32"))
        return commands

    def delete_commands(self) -> list[Command]:
        """Delete both namespaces (which removes their devices, rules and qdiscs with them)."""
        return [Command(("ip", "netns", "delete", ns), may_fail=True) for ns in self.namespaces]

    def _address_commands(self, side: str, address: str, extra: tuple[str, ...] = ()) -> list[Command]:
        ns = self.namespace(side)
        return [
            Command(("ip", "-n", ns, "addr", "add", address, *extra, "dev", DEVICE)),
            # One packet per segment: with the default GSO, a veth carries 64 KB super-packets,
            # and a fault dropping one would drop ~45 wire packets at once.
            Command(("ip", "-n", ns, "link", "set", DEVICE, "mtu", str(MTU), "gso_max_segs", "1", "up")),
        ]
