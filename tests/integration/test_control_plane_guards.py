"""Both control planes refuse what a web page can make a browser send, and serve scripts as before.

A page cannot set a request's Origin, nor its Host once DNS rebinding has
pointed its own domain at 127.0.0.1, nor hide a browser's user agent; a
script or a Toxiproxy client sends a non-browser user agent, no Origin, and
the address it connected to as Host. Each case goes through a real HTTP
client (aiohttp) to a real server on 127.0.0.1, and a refused request must
change nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import pytest
import requests

from chaosagenkit.control_options import ControlOptions
from tests.integration.control_plane_support import PLANES, served
from tests.integration.proxy_support import wait_for

pytestmark = [pytest.mark.chaos]

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


async def call(plane, method: str, path: str, body: bytes | None = None, headers=None) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, plane.url + path, data=body, headers=headers or {}) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text else None


@pytest.mark.parametrize("plane_name", PLANES)
@pytest.mark.parametrize(
    "user_agent",
    [None, "python-requests/2.32.3", "Go-http-client/1.1", "curl/8.5.0", "axios/1.7.2", "toxiproxy-cli"],
)
def test_scripts_and_toxiproxy_clients_are_served(plane_name, user_agent):
    async def scenario():
        async with served(plane_name) as plane:
            headers = {} if user_agent is None else {"User-Agent": user_agent}
            status, _ = await call(plane, "GET", plane.read_path, headers=headers)
            assert status == 200
            status, _ = await call(plane, "POST", plane.change_path, plane.change_body, headers)
            assert status == 201 and plane.changes() == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("plane_name", PLANES)
@pytest.mark.parametrize("user_agent", [FIREFOX, CHROME])
def test_a_browser_user_agent_is_refused_as_toxiproxy_refuses_it(plane_name, user_agent):
    async def scenario():
        async with served(plane_name) as plane:
            headers = {"User-Agent": user_agent, "Content-Type": "text/plain"}
            assert await call(plane, "GET", plane.read_path, headers=headers) == (
                403,
                {"error": "User agent not allowed", "status": 403},  # Toxiproxy's words (api.go)
            )
            status, _ = await call(plane, "POST", plane.change_path, plane.change_body, headers)
            assert status == 403 and plane.changes() == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("plane_name", PLANES)
@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1"])
def test_a_cross_origin_request_is_refused_and_changes_nothing(plane_name, origin):
    """A page's "simple" POST: text/plain, no preflight, a browser-like but non-Mozilla agent."""

    async def scenario():
        async with served(plane_name) as plane:
            headers = {"Origin": origin, "Content-Type": "text/plain", "User-Agent": "SomeWebView/1.0"}
            status, error = await call(plane, "POST", plane.change_path, plane.change_body, headers)
            assert status == 403 and "cross-origin request refused" in error["error"]
            assert plane.changes() == 0
            same_origin = {"Origin": f"http://127.0.0.1:{plane.port}"}
            assert (await call(plane, "GET", plane.read_path, headers=same_origin))[0] == 200

    asyncio.run(scenario())


@pytest.mark.parametrize("plane_name", PLANES)
def test_a_host_header_that_does_not_name_the_api_is_refused(plane_name):
    """DNS rebinding: the page's own domain, resolved to 127.0.0.1, arrives as Host."""

    async def scenario():
        async with served(plane_name) as plane:
            for host in ("evil.example", f"evil.example:{plane.port}", "127.0.0.1.nip.io", "localhost.evil"):
                status, error = await call(
                    plane, "POST", plane.change_path, plane.change_body, {"Host": host}
                )
                assert status == 403 and "does not name this API" in error["error"], host
            assert plane.changes() == 0
            for host in (
                f"127.0.0.1:{plane.port}",
                f"localhost:{plane.port}",
                "LOCALHOST",
                "[::1]:80",
                "127.0.0.2",
            ):
                assert (await call(plane, "GET", plane.read_path, headers={"Host": host}))[0] == 200, host

    asyncio.run(scenario())


@pytest.mark.parametrize("plane_name", PLANES)
def test_allowed_hosts_and_browsers_are_opt_in(plane_name):
    async def scenario():
        options = ControlOptions(allowed_hosts=("chaos.internal",), allow_browsers=True)
        async with served(plane_name, options) as plane:
            headers = {"Host": f"chaos.internal:{plane.port}", "User-Agent": FIREFOX}
            assert (await call(plane, "GET", plane.read_path, headers=headers))[0] == 200
            foreign = {"Host": "evil.example", "User-Agent": FIREFOX}
            assert (await call(plane, "GET", plane.read_path, headers=foreign))[0] == 403

    asyncio.run(scenario())


@pytest.mark.parametrize("plane_name", PLANES)
def test_bound_to_every_interface_any_ip_address_is_a_host_but_no_foreign_name(plane_name):
    async def scenario():
        async with served(
            plane_name, ControlOptions(token="a-token-of-enough-length"), bind="0.0.0.0"
        ) as plane:
            auth = {"Authorization": "Bearer a-token-of-enough-length"}
            for host, status in [
                ("127.0.0.1", 200),
                ("10.1.2.3:8474", 200),
                ("localhost", 200),
                ("evil.example", 403),
            ]:
                assert (await call(plane, "GET", plane.read_path, headers={**auth, "Host": host}))[
                    0
                ] == status

    asyncio.run(scenario())


@pytest.mark.parametrize("plane_name", PLANES)
@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "application/octet-stream", None]
)
def test_a_json_body_is_read_whatever_its_content_type(plane_name, content_type):
    """``curl -d`` sends form-encoded; Toxiproxy reads the JSON anyway, and so do we."""

    async def scenario():
        async with served(plane_name) as plane:
            headers = {} if content_type is None else {"Content-Type": content_type}
            status, _ = await call(plane, "POST", plane.change_path, plane.change_body, headers)
            assert status == 201 and plane.changes() == 1

    asyncio.run(scenario())


def test_the_daemon_takes_allowed_hosts_browsers_and_a_default_ttl_from_its_command_line():
    """``chaosagenkit proxy --allowed-host --allow-browsers --default-ttl``, through requests (a toxiproxy-python style client)."""
    argv = [sys.executable, "-m", "chaosagenkit", "proxy", "--listen", "127.0.0.1:0", "--exit-with-parent"]
    argv += ["--allowed-host", "toxiproxy.test", "--allow-browsers", "--default-ttl", "0.5"]
    daemon = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        api = json.loads(daemon.stdout.readline())["api"]
        with requests.Session() as http:
            assert http.get(f"{api}/version", headers={"Host": "toxiproxy.test"}).status_code == 200
            assert http.get(f"{api}/version", headers={"User-Agent": FIREFOX}).status_code == 200
            assert http.get(f"{api}/version", headers={"Host": "other.test"}).status_code == 403
            created = http.post(f"{api}/proxies", json={"name": "p", "upstream": "127.0.0.1:9"})
            assert created.status_code == 201
            toxic = http.post(
                f"{api}/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 5}}
            )
            assert toxic.status_code == 200 and toxic.json()["duration_s"] == 0.5

            async def gone():
                await wait_for(
                    lambda: http.get(f"{api}/proxies/p/toxics").json() == [], what="the toxic to expire"
                )

            asyncio.run(gone())
    finally:
        daemon.terminate()
        daemon.wait(10)
        daemon.stdout.close()
        daemon.stderr.close()


@pytest.mark.parametrize("value", ["0", "-1", "86401", "nan", "soon"])
def test_a_bad_default_ttl_is_refused_at_the_command_line(value):
    for command in (["proxy", "--listen", "127.0.0.1:0"], ["serve"]):
        done = subprocess.run(
            [sys.executable, "-m", "chaosagenkit", *command, "--default-ttl", value],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (command, done.stderr)
        assert "--default-ttl" in done.stderr
