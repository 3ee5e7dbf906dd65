"""Every fault has a TTL, from every entry point: the raw control APIs too (issue 16 item 7, issue 9 item 7).

A fault added over HTTP without ``duration_s`` (as a Toxiproxy client adds
a toxic, or a script posts a fault to the host) gets the daemon's default
TTL and goes by itself; ``duration_s`` has the same maximum (a day) on both.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import pytest
import requests

from chaosagenkit.limits import DEFAULT_TTL_S, MAX_TTL_S
from tests.integration.control_plane_support import served
from tests.integration.proxy_support import tcp_server, wait_for
from tests.integration.test_service_support import wait_for as wait_for_sync

pytestmark = [pytest.mark.chaos]


async def send(url: str, method: str, path: str, body: object = None) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http, http.request(method, url + path, json=body) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else None


def test_a_fault_posted_to_the_host_without_duration_gets_the_default_ttl_and_goes():
    async def scenario():
        async with served("host", default_ttl_s=0.3) as plane:
            status, fault = await send(plane.url, "POST", "/faults", {"kind": "fail_every", "nth": 2})
            assert status == 201 and fault["duration_s"] == 0.3
            assert fault["expires_at"] == pytest.approx(fault["added_at"] + 0.3)
            status, crash = await send(
                plane.url, "POST", "/crash", {"when": "after_requests", "after_requests": 5}
            )
            assert status == 202 and crash["fault"]["duration_s"] == 0.3
            await wait_for(lambda: plane.changes() == 0, what="both faults to expire")
            assert (await send(plane.url, "GET", "/faults")) == (200, [])

    asyncio.run(scenario())


def test_a_toxic_and_a_disable_from_a_toxiproxy_client_get_the_default_ttl_and_go():
    async def scenario():
        async with tcp_server() as upstream, served("proxy", default_ttl_s=0.3) as plane:
            await send(plane.url, "POST", "/proxies", {"name": "p", "upstream": f"127.0.0.1:{upstream[1]}"})
            status, toxic = await send(plane.url, "POST", "/proxies/p/toxics", {"type": "latency"})
            assert status == 200 and toxic["duration_s"] == 0.3
            status, proxy = await send(plane.url, "POST", "/proxies/p", {"enabled": False})
            assert status == 200 and proxy["enabled"] is False
            server = plane.target
            await wait_for(lambda: not server.proxies["p"].toxics, what="the toxic to expire")
            await wait_for(lambda: server.proxies["p"].enabled, what="the proxy to come back up")

    asyncio.run(scenario())


@pytest.mark.parametrize("plane_name", ["proxy", "host"])
def test_both_planes_have_the_same_ttl_maximum_and_null_means_the_default(plane_name):
    async def scenario():
        async with served(plane_name) as plane:
            if plane_name == "proxy":
                await send(plane.url, "POST", "/proxies", {"name": "p", "upstream": "127.0.0.1:9"})
                path = "/proxies/p/toxics"

                def fault(n: int) -> dict:
                    return {"type": "latency", "name": f"t{n}"}
            else:
                path = "/faults"

                def fault(n: int) -> dict:
                    return {"kind": "fail_every", "nth": 2}

            status, error = await send(plane.url, "POST", path, {**fault(1), "duration_s": MAX_TTL_S + 1})
            assert (status, error["error"]) == (400, "'duration_s' must be > 0 and <= 86400, got 86401.0")
            assert plane.changes() == (1 if plane_name == "proxy" else 0)  # the proxy itself, no fault
            status, created = await send(plane.url, "POST", path, {**fault(2), "duration_s": MAX_TTL_S})
            assert status in (200, 201) and created["duration_s"] == MAX_TTL_S
            status, created = await send(plane.url, "POST", path, {**fault(3), "duration_s": None})
            assert status in (200, 201) and created["duration_s"] == DEFAULT_TTL_S

    asyncio.run(scenario())


def test_the_host_daemon_takes_its_default_ttl_from_the_command_line():
    argv = [sys.executable, "-m", "chaosagenkit", "serve", "--exit-with-parent", "--default-ttl", "0.5"]
    host = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        control = json.loads(host.stdout.readline())["control"]
        created = requests.post(f"{control}/faults", json={"kind": "delay", "delay_ms": 5}, timeout=10)
        assert created.status_code == 201 and created.json()["duration_s"] == 0.5
        wait_for_sync(
            lambda: requests.get(f"{control}/faults", timeout=10).json() == [], what="the fault to expire"
        )
    finally:
        host.terminate()
        host.wait(10)
        host.stdout.close()
        host.stderr.close()
