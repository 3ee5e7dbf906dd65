"""The proxy daemon's HTTP API: Toxiproxy's routes and JSON, bad input, auth, seed, stats."""

from __future__ import annotations

import json
import random
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from chaosagenkit.control_client import ControlClient
from chaosagenkit.exceptions import ControlAPIError
from chaosagenkit.network import daemons

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]


@pytest.fixture(scope="module")
def daemon() -> Iterator[dict]:
    proc, ready = daemons.start_daemon(seed=11)
    yield ready
    daemons.stop_daemon(proc)


@pytest.fixture
def api(daemon) -> Iterator[ControlClient]:
    client = ControlClient(daemon["api"])
    yield client
    for name in list(client.get("/proxies")):
        client.delete(f"/proxies/{name}")


def raw(api: ControlClient, method: str, path: str, body: bytes | None = None, headers=None):
    """(status, decoded JSON or None) for any request, errors included."""
    request = urllib.request.Request(api.base_url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            return response.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as e:
        payload = e.read()
        return e.code, json.loads(payload) if payload else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_version_names_the_implementation(api):
    version = api.get("/version")
    assert version["implementation"] == "chaosagenkit" and version["version"]


def test_the_proxy_lifecycle_speaks_toxiproxys_json(api):
    status, created = raw(
        api,
        "POST",
        "/proxies",
        json.dumps({"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432"}).encode(),
    )
    assert status == 201
    assert {"name", "listen", "upstream", "enabled", "toxics"} <= set(created)
    assert created["enabled"] is True and created["toxics"] == []
    assert created["listen"].startswith("127.0.0.1:") and not created["listen"].endswith(":0")

    index = api.get("/proxies")
    assert list(index) == ["db"] and index["db"]["listen"] == created["listen"]

    toxic = api.post("/proxies/db/toxics", {"type": "latency", "attributes": {"latency": 1000}})
    assert toxic == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 1000, "jitter": 0},
        "duration_s": 300.0,  # ours: a toxic given without a TTL gets the daemon's default
    }
    updated = api.request(
        "PATCH", "/proxies/db/toxics/latency_downstream", {"attributes": {"jitter": 10}, "toxicity": 0.5}
    )
    assert updated["attributes"] == {"latency": 1000, "jitter": 10} and updated["toxicity"] == 0.5
    assert api.post("/proxies/db/toxics/latency_downstream", {"toxicity": 1})["toxicity"] == 1.0
    assert api.get("/proxies/db/toxics") == [api.get("/proxies/db/toxics/latency_downstream")]
    assert api.get("/proxies/db")["toxics"][0]["name"] == "latency_downstream"

    assert api.post("/proxies/db", {"enabled": False})["enabled"] is False
    assert api.request("PATCH", "/proxies/db", {"enabled": True})["listen"] == created["listen"]

    assert raw(api, "POST", "/reset") == (204, None)
    assert api.get("/proxies/db")["toxics"] == []
    assert raw(api, "DELETE", "/proxies/db") == (204, None)
    assert api.get("/proxies") == {}


def test_populate_creates_replaces_and_keeps_as_toxiproxy(api):
    first = [{"name": "a", "upstream": "127.0.0.1:1001"}, {"name": "b", "upstream": "127.0.0.1:1002"}]
    status, body = raw(api, "POST", "/populate", json.dumps(first).encode())
    assert status == 201 and [p["name"] for p in body["proxies"]] == ["a", "b"]
    api.post("/proxies/a/toxics", {"type": "noop", "name": "kept"})
    again = [{"name": "a", "upstream": "127.0.0.1:1001"}, {"name": "b", "upstream": "127.0.0.1:2002"}]
    _, body = raw(api, "POST", "/populate", json.dumps(again).encode())
    proxies = {p["name"]: p for p in body["proxies"]}
    assert [t["name"] for t in proxies["a"]["toxics"]] == ["kept"], "an identical proxy is kept"
    assert proxies["b"]["upstream"] == "127.0.0.1:2002", "a changed proxy is replaced"


def test_populate_is_all_or_nothing(api):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        batch = [
            {"name": "ok", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"},
            {"name": "clash", "upstream": "127.0.0.1:1", "listen": f"127.0.0.1:{busy}"},
        ]
        status, body = raw(api, "POST", "/populate", json.dumps(batch).encode())
    assert status == 409 and f"127.0.0.1:{busy}" in body["error"]
    assert api.get("/proxies") == {}
    status, body = raw(
        api,
        "POST",
        "/populate",
        json.dumps([{"name": "ok", "upstream": "127.0.0.1:1"}, {"name": "bad"}]).encode(),
    )
    assert status == 400 and "upstream (proxy 2)" in body["error"]
    assert api.get("/proxies") == {}


def _proxy(api):
    api.post("/proxies", {"name": "p", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"})
    api.post("/proxies/p/toxics", {"type": "latency", "name": "slow", "attributes": {"latency": 5}})


BAD_REQUESTS = [
    # (method, path, body, status, words in the error)
    ("POST", "/proxies", b"{not json", 400, "not valid JSON"),
    ("POST", "/proxies", b"", 400, "empty body"),
    ("POST", "/proxies", b"[]", 400, "JSON object"),
    ("POST", "/proxies", b'{"upstream": "127.0.0.1:1"}', 400, "missing required field: name"),
    ("POST", "/proxies", b'{"name": "q"}', 400, "missing required field: upstream"),
    ("POST", "/proxies", b'{"name": "q", "upstream": "nowhere"}', 400, "'upstream' must be HOST:PORT"),
    ("POST", "/proxies", b'{"name": "q", "upstream": "h:70000"}', 400, "between 0 and 65535"),
    ("POST", "/proxies", b'{"name": "q", "upstream": "h:1", "listen": "0.0.0.0:0"}', 400, "not a loopback"),
    (
        "POST",
        "/proxies",
        b'{"name": "q", "upstream": "h:1", "enabled": "yes"}',
        400,
        "'enabled' must be true or false",
    ),
    ("POST", "/proxies", b'{"name": "a/b", "upstream": "h:1"}', 400, "must not contain '/'"),
    ("POST", "/proxies", b'{"name": "p", "upstream": "127.0.0.1:1"}', 409, "proxy already exists: p"),
    ("GET", "/proxies/nope", None, 404, "proxy not found: nope"),
    ("PATCH", "/proxies/p", b'{"listen": 5}', 400, "'listen' must be HOST:PORT"),
    ("PATCH", "/proxies/p", b'{"name": "other"}', 400, "'name' cannot be changed"),
    ("DELETE", "/proxies/nope", None, 404, "proxy not found"),
    ("POST", "/proxies/p/toxics", b'{"type": "latncy"}', 400, "'type' must be one of"),
    ("POST", "/proxies/p/toxics", b"{}", 400, "missing required field: type"),
    ("POST", "/proxies/p/toxics", b'{"type": "latency", "stream": "sideways"}', 400, "stream was invalid"),
    (
        "POST",
        "/proxies/p/toxics",
        b'{"type": "latency", "toxicity": 2}',
        400,
        "'toxicity' must be between 0 and 1, got 2",
    ),
    (
        "POST",
        "/proxies/p/toxics",
        b'{"type": "latency", "attributes": {"latency": -1}}',
        400,
        "'latency' must be >= 0",
    ),
    (
        "POST",
        "/proxies/p/toxics",
        b'{"type": "latency", "attributes": {"lat": 1}}',
        400,
        "'lat' is not an attribute",
    ),
    ("POST", "/proxies/p/toxics", b'{"type": "latency", "name": "slow"}', 409, "toxic already exists: slow"),
    ("POST", "/proxies/nope/toxics", b'{"type": "latency"}', 404, "proxy not found"),
    ("GET", "/proxies/p/toxics/nope", None, 404, "toxic not found: nope"),
    (
        "PATCH",
        "/proxies/p/toxics/slow",
        b'{"attributes": {"latency": "x"}}',
        400,
        "'latency' must be an integer",
    ),
    ("PATCH", "/proxies/p/toxics/slow", b'{"stream": "upstream"}', 400, "'stream' cannot be changed"),
    ("DELETE", "/proxies/p/toxics/nope", None, 404, "toxic not found"),
    ("POST", "/populate", b'{"name": "x"}', 400, "JSON array"),
    (
        "POST",
        "/populate",
        b'[{"name": "x", "upstream": "h:1"}, {"name": "x", "upstream": "h:2"}]',
        400,
        "more than once",
    ),
    ("POST", "/seed", b'{"seed": -1}', 400, "'seed' must be >= 0, got -1"),
    # integers of 400 digits: JSON allows them, a float cannot hold them
    (
        "POST",
        "/proxies/p/toxics",
        b'{"type": "latency", "attributes": {"latency": 1' + b"0" * 400 + b"}}",
        400,
        "'latency' must be between 0 and 86400000, got an integer of 401 digits",
    ),
    (
        "POST",
        "/proxies/p/toxics",
        b'{"type": "packet_loss", "attributes": {"loss_rate": 1' + b"0" * 400 + b"}}",
        400,
        "'loss_rate' must be a number below 1e308, got an integer of 401 digits",
    ),
    (
        "POST",
        "/proxies/p/toxics",
        b'{"type": "latency", "toxicity": 1' + b"0" * 400 + b"}",
        400,
        "'toxicity' must be between 0 and 1, got an integer of 401 digits",
    ),
    (
        "POST",
        "/proxies/p/toxics",
        b'{"type": "latency", "duration_s": 1' + b"0" * 400 + b"}",
        400,
        "'duration_s' must be > 0 and <= 86400, got an integer of 401 digits",
    ),
    (
        "PATCH",
        "/proxies/p",
        b'{"enabled": false, "duration_s": 1' + b"0" * 400 + b"}",
        400,
        "'duration_s' must be > 0 and <= 86400, got an integer of 401 digits",
    ),
    ("PATCH", "/proxies/p", b'{"duration_s": 5}', 400, "'duration_s' applies only with \"enabled\": false"),
    (
        "POST",
        "/seed",
        b'{"seed": 1' + b"0" * 400 + b"}",
        400,
        "'seed' must be an integer between 0 and 2**64 - 1",
    ),
    (
        "POST",
        "/proxies/p/toxics",
        b'{"type": "latency", "duration_s": 86401}',
        400,
        "must be > 0 and <= 86400",
    ),
    ("GET", "/no/such/route", None, 404, ""),
    ("PUT", "/proxies", b"{}", 405, ""),
]


@pytest.mark.parametrize(
    "method,path,body,status,words", BAD_REQUESTS, ids=[f"{m} {p} {b!r}"[:60] for m, p, b, *_ in BAD_REQUESTS]
)
def test_bad_input_is_a_4xx_naming_the_problem_and_changes_nothing(api, method, path, body, status, words):
    _proxy(api)
    before = api.get("/proxies")
    got, error = raw(api, method, path, body)
    assert got == status
    assert error["status"] == status and words in error["error"]
    after = api.get("/proxies")
    for proxy in (before, after):
        for entry in proxy.values():
            entry.pop("stats")
    assert after == before


def test_a_listen_address_in_use_is_a_conflict_and_leaves_the_proxy_as_it_was(api):
    _proxy(api)
    listen = api.get("/proxies/p")["listen"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        status, error = raw(api, "PATCH", "/proxies/p", json.dumps({"listen": busy}).encode())
    assert status == 409 and busy in error["error"]
    assert api.get("/proxies/p")["listen"] == listen and api.get("/proxies/p")["enabled"]


def test_random_garbage_never_causes_a_5xx(api):
    _proxy(api)
    rng = random.Random(5)
    values = [None, True, -1, 0, 1.5, 10**20, 10**400, "", "x", "127.0.0.1:1", [], {}, [1, 2], {"a": 1}]
    keys = ["name", "listen", "upstream", "enabled", "type", "stream", "toxicity", "attributes", "seed"]
    paths = ["/proxies", "/proxies/p", "/proxies/p/toxics", "/proxies/p/toxics/slow", "/populate", "/seed"]
    for _ in range(300):
        body = {key: rng.choice(values) for key in rng.sample(keys, rng.randint(0, 5))}
        if rng.random() < 0.2:
            body = rng.choice(values)
        status, _ = raw(api, rng.choice(["POST", "PATCH"]), rng.choice(paths), json.dumps(body).encode())
        assert status < 500, body
    for name in list(api.get("/proxies")):
        if name != "p":
            api.delete(f"/proxies/{name}")


def test_stats_count_connections_bytes_and_toxic_actions(api):
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        api.post("/proxies", {"name": "s", "upstream": f"127.0.0.1:{upstream.getsockname()[1]}"})
        api.post("/proxies/s/toxics", {"type": "latency", "stream": "upstream", "attributes": {"latency": 1}})
        host, port = api.get("/proxies/s")["listen"].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.sendall(b"12345")
            accepted, _ = upstream.accept()
            with accepted:
                assert accepted.recv(5) == b"12345"
        stats = api.get("/proxies/s/stats")
    assert stats["connections_total"] == 1
    assert stats["upstream"] == {"received": 5, "sent": 5}
    assert stats["toxics"]["latency_upstream"]["acted"] >= 1
    assert api.get("/proxies/s")["stats"]["connections_total"] == 1


def test_the_seed_can_be_read_and_set(api, daemon):
    assert daemon["seed"] == 11
    assert api.post("/seed", {"seed": 77}) == {"seed": 77}
    assert api.get("/seed") == {"seed": 77}
    status, error = raw(api, "POST", "/seed", json.dumps({"seed": 2**64}).encode())
    assert status == 400 and "'seed'" in error["error"]


def test_a_token_guards_every_route():
    proc, ready = daemons.start_daemon(token="s3cret")
    try:
        with pytest.raises(ControlAPIError) as info:
            ControlClient(ready["api"]).get("/proxies")
        assert info.value.status == 401 and "bearer token" in info.value.error
        with pytest.raises(ControlAPIError):
            ControlClient(ready["api"], "wrong").get("/version")
        authorised = ControlClient(ready["api"], "s3cret")
        assert authorised.get("/proxies") == {}
        created = authorised.post(
            "/proxies", {"name": "open", "upstream": "127.0.0.1:1", "listen": "0.0.0.0:0"}
        )
        assert created["listen"].startswith("0.0.0.0:"), "with a token, other hosts may be served"
    finally:
        daemons.stop_daemon(proc)
