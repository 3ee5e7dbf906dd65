"""A topology's own network namespace and DNS, for real: what resolves there, and what is left after.

Needs root (skips with the reason otherwise). Lookups run in a process
started under ``ip netns exec``, exactly as the namespace's hosts are; the
only nameserver it can reach is the run's responder on the namespace's own
loopback, and no interface leads off the machine.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chaosagenkit.client.runtime import RUNTIME
from chaosagenkit.topology.netns import ETC_NETNS, NETNS_DIR, DnsNamespace, unavailable_reason

pytestmark = [
    pytest.mark.xdist_group("kernel"),  # one at a time beside other kernel tests (pytest -n --dist loadgroup)
    pytest.mark.chaos,
    pytest.mark.skipif(
        unavailable_reason() is not None, reason=f"topology namespace: {unavailable_reason()}"
    ),
]

LOOKUP = """
import socket, sys, time
started = time.monotonic()
try:
    address = socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET)[0][4][0]
except socket.gaierror as e:
    address = f"gaierror {e.errno}"
print(address, round(time.monotonic() - started, 2))
"""


def lookup(namespace: DnsNamespace, name: str) -> tuple[str, float]:
    out = subprocess.run(
        [*namespace.command_prefix, sys.executable, "-c", LOOKUP, name],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    return " ".join(out[:-1]), float(out[-1])


@pytest.fixture
def namespace():
    built = DnsNamespace({"dns_zone": "chaos.test", "resolver_timeout_s": 1})
    try:
        built.build()
        yield built
    finally:
        built.teardown()
        RUNTIME.stop()  # its thread entered the namespace


def test_names_of_the_zone_resolve_and_dns_faults_reach_new_lookups(namespace):
    assert lookup(namespace, "backend.chaos.test")[0] == "127.0.0.1"
    namespace.inject("backend.chaos.test", "nxdomain", 30, "backend")
    assert lookup(namespace, "backend.chaos.test")[0] == f"gaierror {socket.EAI_NONAME}"
    namespace.inject("backend.chaos.test", "servfail", 30, "backend")
    assert lookup(namespace, "backend.chaos.test")[0] == f"gaierror {socket.EAI_AGAIN}"
    namespace.inject("backend.chaos.test", "silent", 30, "backend")
    answer, took_s = lookup(namespace, "backend.chaos.test")
    assert answer == f"gaierror {socket.EAI_AGAIN}" and took_s >= 0.9  # the resolver's 1 s
    assert namespace.clear() == {"backend.chaos.test": "backend"}
    assert lookup(namespace, "backend.chaos.test")[0] == "127.0.0.1"


def test_nothing_outside_the_zone_resolves_and_nothing_leaves_the_namespace(namespace):
    answer, took_s = lookup(namespace, "example.com")
    assert answer.startswith("gaierror") and took_s < 0.9  # REFUSED at once, never forwarded
    links = subprocess.run(
        ["ip", "-n", namespace.name, "-o", "link"], capture_output=True, text=True, check=True
    ).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    resolv = (ETC_NETNS / namespace.name / "resolv.conf").read_text()
    assert "nameserver 127.0.0.1" in resolv and resolv.count("nameserver") == 1


def test_teardown_leaves_no_namespace_and_no_files():
    built = DnsNamespace({})
    built.build()
    name = built.name
    assert (NETNS_DIR / name).exists()
    built.teardown()
    RUNTIME.stop()
    built.teardown()  # idempotent
    assert not (NETNS_DIR / name).exists() and not (ETC_NETNS / name).exists()
    assert not Path(built.faults_path).exists()
