"""A chaos process that builds a kernel network, faults it, reports what it made, then waits to be killed.

Run by tests/integration/test_kernel_sigkill.py as ``python -m tests.integration.kernel_victim LINK``.
"""

from __future__ import annotations

import json
import sys
import time

from chaosagenkit import control
from chaosagenkit.client import registry
from chaosagenkit.kernel import network as kernel_network
from chaosagenkit.kernel.faults import parse_spec
from chaosagenkit.sandbox import SANDBOX


def main(link: str) -> None:
    control.configure_control()
    control.build_sandbox(
        seed=3,
        servers=[{"name": "target", "transport": "tcp", "namespace": "target"}],
        proxy=None,
        proxies=[],
        clients=[{"name": "caller", "server": "target", "timeout_ms": 5000}],
        configuration={},
        network={"name": "net", "link": link},
    )
    assert registry.send_requests("caller", 3)["ok"] == 3
    network = kernel_network.get_network("net")
    network.inject(parse_spec("loss", loss_rate=0.1), "both", 600)
    network.inject(parse_spec("bandwidth", rate_kbps=10_000), "both", 600)
    if link == "relay":
        network.inject(parse_spec("delay", delay_ms=1), "both", 600)
    report = {
        "namespaces": list(network.topology.namespaces),
        "state_file": network._state_file,
        "pids": [
            p
            for p in (
                network._guard.process.pid if network._guard else None,
                network._relay.process.pid if network._relay else None,
                SANDBOX.servers["target"].process.pid,
            )
            if p
        ],
    }
    print(json.dumps(report), flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1])
