"""Slow and idle clients cannot hold a control plane: they are closed, and everyone else is served.

Hundreds of connections that send half a request head, that send nothing,
or that stay open after their request, against an API with short timeouts
(1 s) and a cap of 64 connections: every one of them is closed (the
timeouts, and the cap closing the connection that waited longest), the
API never holds more than its cap, and a client that asks properly gets
its answer all along. Connection counts are read from the API's own
``GET /metrics``.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaosagenkit.api import connection_families
from chaosagenkit.control_options import ControlOptions
from tests.integration.control_plane_support import PLANES, served
from tests.integration.proxy_support import wait_for

pytestmark = [pytest.mark.chaos]

CAP = 64
OPTIONS = ControlOptions(header_timeout_s=1.0, idle_timeout_s=1.0, body_timeout_s=1.0, max_connections=CAP)
#: Generous: the machine is shared. The property is that they close, not how fast beyond the timeout.
CLOSE_DEADLINE_S = 1.0 + 20.0


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    """Return once the server has closed the connection (FIN or RST)."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass


async def held(http: aiohttp.ClientSession, url: str) -> int:
    """Connections the API holds, from its /metrics (this request's own connection included)."""
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    for family in text_string_to_metric_families(text):
        if family.name == "chaosagenkit_control_connections":
            return int(sum(sample.value for sample in family.samples))
    raise AssertionError("no chaosagenkit_control_connections in /metrics")


def busy_connections(app) -> int:
    held = next(f for f in connection_families(app) if f.name == "chaosagenkit_control_connections")
    return int(sum(value for _, labels, value in held.samples if labels["state"] == "busy"))


@pytest.mark.parametrize("plane_name", PLANES)
def test_unfinished_requests_and_idle_connections_are_closed_while_others_are_served(plane_name):
    async def scenario():
        async with served(plane_name, OPTIONS) as plane:
            stalled = []
            for i in range(300):  # request heads that never end
                reader, writer = await asyncio.open_connection("127.0.0.1", plane.port)
                writer.write(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-" + str(i).encode() + b": ")
                stalled.append((reader, writer))
            for _ in range(100):  # connections that never say anything
                stalled.append(await asyncio.open_connection("127.0.0.1", plane.port))
            for _ in range(20):  # kept alive after one complete request, then idle
                reader, writer = await asyncio.open_connection("127.0.0.1", plane.port)
                writer.write(f"GET {plane.read_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                assert (await reader.readline()).startswith(b"HTTP/1.1 200")
                stalled.append((reader, writer))
            waiting = [asyncio.ensure_future(closed_by_server(reader)) for reader, _ in stalled]

            # Meanwhile a well-behaved client is served, on fresh connections, and the cap holds.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
                for _ in range(30):
                    async with http.get(plane.url + plane.read_path) as response:
                        assert response.status == 200
                    assert await held(http, plane.url) <= CAP
                _, pending = await asyncio.wait(waiting, timeout=CLOSE_DEADLINE_S)
                assert not pending, f"{len(pending)} of {len(stalled)} slow connections still open"
                assert await held(http, plane.url) == 1  # only the /metrics request itself
            for _, writer in stalled:
                writer.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("plane_name", PLANES)
def test_a_body_that_does_not_arrive_is_a_408_and_the_connection_goes(plane_name):
    async def scenario():
        async with served(plane_name, OPTIONS) as plane:
            reader, writer = await asyncio.open_connection("127.0.0.1", plane.port)
            head = f"POST {plane.change_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n"
            writer.write(head.encode() + plane.change_body[:5])
            status_line = await asyncio.wait_for(reader.readline(), CLOSE_DEADLINE_S)
            assert status_line.startswith(b"HTTP/1.1 408 "), status_line
            await asyncio.wait_for(closed_by_server(reader), CLOSE_DEADLINE_S)
            writer.close()
            assert plane.changes() == 0

    asyncio.run(scenario())


def test_when_every_connection_is_busy_a_newcomer_gets_a_503_not_a_hang():
    """The cap counts requests in progress too: a full API answers at once instead of queueing."""

    async def scenario():
        options = ControlOptions(max_connections=2, body_timeout_s=30.0)
        async with served("proxy", options) as plane:
            busy = []
            for _ in range(2):  # two requests whose bodies are still coming: both busy
                reader, writer = await asyncio.open_connection("127.0.0.1", plane.port)
                writer.write(b"POST /proxies HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
                busy.append((reader, writer))
            await wait_for(lambda: busy_connections(plane.app) == 2, what="both requests in their handlers")
            async with aiohttp.ClientSession() as http, http.get(plane.url + "/version") as response:
                assert response.status == 503 and (await response.json())["status"] == 503
            for _, writer in busy:
                writer.close()

    asyncio.run(scenario())
