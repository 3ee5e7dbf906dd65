"""``GET /metrics`` on both control planes, read back with prometheus_client's own parser.

The proxy's numbers are compared with the bytes and connections the test
itself sent through a real proxy; the host's with the requests the test
sent through its real ChaosAgent and the faults it added over HTTP.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from agenkit.interfaces import Message
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.control_plane_support import served
from tests.integration.proxy_support import tcp_server, wait_for

pytestmark = [pytest.mark.chaos]


async def scrape(url: str) -> dict[str, list]:
    """Family name -> its samples, from the text a Prometheus server would scrape."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: list, name: str | None = None, **labels: str) -> float:
    """The value of the one sample matching ``labels`` (and ``name``, for a histogram's parts)."""
    found = [
        s
        for s in samples
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0].value


async def post(url: str, path: str, body: object) -> dict:
    async with aiohttp.ClientSession() as http, http.post(url + path, json=body) as response:
        assert response.status in (200, 201), await response.text()
        return await response.json()


def test_proxy_metrics_count_bytes_and_connections_per_proxy_and_per_toxic():
    name = 'we"ird\\name'  # label values are escaped: the parser must read it back whole

    async def scenario():
        async with tcp_server() as upstream, served("proxy") as plane:
            proxy = await post(plane.url, "/proxies", {"name": name, "upstream": f"127.0.0.1:{upstream[1]}"})
            quoted = aiohttp.helpers.quote(name, safe="")
            await post(
                plane.url,
                f"/proxies/{quoted}/toxics",
                {"type": "latency", "name": "lag", "stream": "upstream", "attributes": {"latency": 1}},
            )
            host, port = proxy["listen"].rsplit(":", 1)
            sent = 0
            for size in (1000, 5000):  # two connections, echoed back in full
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(b"x" * size)
                assert len(await reader.readexactly(size)) == size
                writer.close()
                sent += size
            async with (
                aiohttp.ClientSession() as http,
                http.delete(f"{plane.url}/proxies/{quoted}/toxics/lag") as response,
            ):
                assert response.status == 204
            server = plane.target
            await wait_for(
                lambda: server.proxies[name].downstream_stats.sent == sent, what="all bytes echoed"
            )
            await wait_for(lambda: not server.proxies[name].connections, what="both connections closed")
            families = await scrape(plane.url)
            where = {"proxy": name, "listener": proxy["listen"], "upstream": f"127.0.0.1:{upstream[1]}"}
            for direction in ("upstream", "downstream"):
                for family in ("toxiproxy_proxy_received_bytes", "toxiproxy_proxy_sent_bytes"):
                    assert value(families[family], direction=direction, **where) == sent
            assert value(families["chaosagenkit_proxy_connections"], **where) == 2
            assert value(families["chaosagenkit_proxy_connections_active"], **where) == 0
            assert value(families["chaosagenkit_proxy_enabled"], **where) == 1
            toxic = {"proxy": name, "toxic": "lag"}
            assert value(families["chaosagenkit_proxy_toxic_bytes"], **toxic) == sent
            assert value(families["chaosagenkit_proxy_toxic_connections"], **toxic) == 2
            assert value(families["chaosagenkit_proxy_toxic_acted"], **toxic) >= 1
            assert value(families["chaosagenkit_proxy_toxic_present"], **toxic) == 0  # deleted, counted still

    asyncio.run(scenario())


def test_host_metrics_count_requests_faults_and_latency():
    async def scenario():
        async with served("host") as plane:
            host = plane.target
            failing = await post(plane.url, "/faults", {"kind": "fail_every", "nth": 2, "duration_s": 60})
            slow = await post(plane.url, "/faults", {"kind": "delay", "delay_ms": 20, "duration_s": 60})
            failures = 0
            for n in range(4):
                try:
                    await host.chaos.process(Message(role="user", content=f"req-{n}"))
                except Exception:
                    failures += 1
            assert failures == 2
            families = await scrape(plane.url)
            assert value(families["chaosagenkit_host_requests"]) == 4
            assert value(families["chaosagenkit_host_faults_injected"], kind="fail_every") == 2
            assert value(families["chaosagenkit_host_faults_injected"], kind="delay") == 4
            assert value(families["chaosagenkit_host_faults_active"]) == 2
            assert (
                value(families["chaosagenkit_host_fault_requests"], fault=failing["id"], kind="fail_every")
                == 4
            )
            assert (
                value(families["chaosagenkit_host_fault_injected"], fault=failing["id"], kind="fail_every")
                == 2
            )
            assert value(
                families["chaosagenkit_host_fault_delay_seconds"], fault=slow["id"], kind="delay"
            ) == (pytest.approx(0.080))
            assert value(
                families["chaosagenkit_host_fault_expiry_timestamp_seconds"], fault=slow["id"], kind="delay"
            ) == (pytest.approx(slow["expires_at"]))
            latency = families["chaosagenkit_host_request_duration_seconds"]
            assert value(latency, "chaosagenkit_host_request_duration_seconds_count") == 4
            assert value(latency, "chaosagenkit_host_request_duration_seconds_sum") >= 0.080
            buckets = [s for s in latency if s.name.endswith("_bucket")]
            counts = [s.value for s in buckets]
            assert counts == sorted(counts) and counts[-1] == 4 and buckets[-1].labels["le"] == "+Inf"
            assert (
                value(latency, "chaosagenkit_host_request_duration_seconds_bucket", le="0.01") == 0
            )  # 20 ms each
            assert value(families["chaosagenkit_host_memory_pressure_bytes"]) == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("plane_name", ["proxy", "host"])
def test_metrics_need_the_token_like_every_route(plane_name):
    from chaosagenkit.control_options import ControlOptions

    async def scenario():
        async with (
            served(plane_name, ControlOptions(token="t" * 16)) as plane,
            aiohttp.ClientSession() as http,
            http.get(f"{plane.url}/metrics") as response,
        ):
            assert response.status == 401
            assert json.loads(await response.text())["status"] == 401

    asyncio.run(scenario())
