"""The same API calls to the real Toxiproxy and to ours: statuses (and some fields) must agree.

Each case starts from no proxies on either server and sends the same
sequence of calls to both. Every call whose status differs, or whose
compared field differs, is a difference; the set of differences must equal
the deliberate refusals documented in docs/network.md ("Deliberate
differences from Toxiproxy"), row for row: a new difference fails, and so
does a documented one that no longer happens.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "network.md"
LAST = object()  # a body placeholder: the JSON answer of the previous call, sent back unchanged


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None  # JSON, raw ``bytes``, or LAST
    compare: Callable[[Any], Any] | None = None  # a field of the answer both must agree on
    headers: dict[str, str] = field(default_factory=dict)


def create(name: str = "p", **fields: Any) -> Call:
    return Call("POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": "{up}", **fields})


def add_toxic(body: Any, proxy: str = "p") -> Call:
    return Call("POST", f"/proxies/{proxy}/toxics", body)


def enabled(body: Any) -> Any:
    return body.get("enabled") if isinstance(body, dict) else None


def names(body: Any) -> Any:
    if isinstance(body, dict):  # GET /proxies; Toxiproxy keeps a proxy named "a/b" (no route reaches it)
        return sorted(name for name in body if "/" not in name)
    return None


def streams(body: Any) -> Any:
    return [toxic.get("stream") for toxic in body] if isinstance(body, list) else None


LATENCY = {"name": "t", "type": "latency", "attributes": {"latency": 10}}

CASES: dict[str, list[Call]] = {
    # -- proxies
    "version": [Call("GET", "/version")],
    "unknown-route": [Call("GET", "/nothing-here")],
    "browser-user-agent": [
        Call("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    ],
    "proxy-create": [
        create(),
        Call("GET", "/proxies", compare=names),
        Call("GET", "/proxies/p", compare=enabled),
    ],
    "proxy-create-exists": [create(), create()],
    "proxy-create-disabled": [create(enabled=False), Call("GET", "/proxies/p", compare=enabled)],
    "proxy-create-enabled-null": [create(enabled=None), Call("GET", "/proxies/p", compare=enabled)],
    "proxy-create-missing-name": [Call("POST", "/proxies", {"upstream": "{up}"})],
    "proxy-create-empty-name": [create(name="")],
    "proxy-create-missing-upstream": [Call("POST", "/proxies", {"name": "p"})],
    "proxy-create-bad-json": [Call("POST", "/proxies", b"{")],
    "proxy-create-not-object": [Call("POST", "/proxies", [])],
    "proxy-create-name-with-slash": [create(name="a/b")],
    "proxy-create-upstream-without-port": [create(upstream="127.0.0.1")],
    "proxy-create-listen-taken": [create(listen="{taken}")],
    "proxy-create-listen-not-local": [create(listen="192.0.2.1:0")],
    "proxy-show-missing": [Call("GET", "/proxies/nope")],
    "proxy-update-upstream": [create(), Call("PATCH", "/proxies/p", {"upstream": "{up2}"})],
    "proxy-update-with-post": [create(), Call("POST", "/proxies/p", {"upstream": "{up2}"})],
    "proxy-update-disable-enable": [
        create(),
        Call("PATCH", "/proxies/p", {"enabled": False}, compare=enabled),
        Call("PATCH", "/proxies/p", {"enabled": True}, compare=enabled),
    ],
    "proxy-update-whole-object-back": [
        create(),
        Call("GET", "/proxies/p"),
        Call("PATCH", "/proxies/p", LAST),
    ],
    "proxy-update-name": [
        create(),
        Call("PATCH", "/proxies/p", {"name": "other"}),
        Call("GET", "/proxies/p"),
    ],
    "proxy-update-listen-taken": [
        create(),
        Call("PATCH", "/proxies/p", {"listen": "{taken}"}),
        Call("GET", "/proxies/p", compare=enabled),
    ],
    "proxy-update-missing": [Call("PATCH", "/proxies/nope", {"enabled": False})],
    "proxy-update-bad-json": [create(), Call("PATCH", "/proxies/p", b"{")],
    "proxy-delete": [create(), Call("DELETE", "/proxies/p"), Call("GET", "/proxies/p")],
    "proxy-delete-missing": [Call("DELETE", "/proxies/nope")],
    # -- populate
    "populate": [
        Call("POST", "/populate", [{"name": "a", "listen": "127.0.0.1:0", "upstream": "{up}"}]),
        Call("GET", "/proxies", compare=names),
    ],
    "populate-empty": [Call("POST", "/populate", [])],
    "populate-not-array": [Call("POST", "/populate", {"name": "a"})],
    "populate-keep-identical": [
        Call("POST", "/populate", [{"name": "a", "listen": "127.0.0.1:0", "upstream": "{up}"}]),
        Call("POST", "/populate", [{"name": "a", "listen": "127.0.0.1:0", "upstream": "{up}"}]),
    ],
    "populate-replace": [
        create(name="a"),
        Call("POST", "/populate", [{"name": "a", "listen": "127.0.0.1:0", "upstream": "{up2}"}]),
    ],
    "populate-same-name-twice": [
        Call(
            "POST",
            "/populate",
            [
                {"name": "a", "listen": "127.0.0.1:0", "upstream": "{up}"},
                {"name": "a", "listen": "127.0.0.1:0", "upstream": "{up2}"},
            ],
        ),
    ],
    "populate-bad-item-after-good": [
        Call(
            "POST",
            "/populate",
            [{"name": "a", "listen": "127.0.0.1:0", "upstream": "{up}"}, {"name": "b"}],
        ),
        Call("GET", "/proxies", compare=names),
    ],
    "populate-listen-taken": [
        Call("POST", "/populate", [{"name": "a", "listen": "{taken}", "upstream": "{up}"}]),
    ],
    "populate-listen-taken-after-good": [
        Call(
            "POST",
            "/populate",
            [
                {"name": "a", "listen": "127.0.0.1:0", "upstream": "{up}"},
                {"name": "b", "listen": "{taken}", "upstream": "{up}"},
            ],
        ),
        Call("GET", "/proxies", compare=names),
    ],
    # -- toxics
    **{
        f"toxic-add-{kind}": [create(), add_toxic({"type": kind, "attributes": attributes})]
        for kind, attributes in {
            "latency": {"latency": 100, "jitter": 10},
            "bandwidth": {"rate": 100},
            "slow_close": {"delay": 100},
            "timeout": {"timeout": 100},
            "reset_peer": {"timeout": 100},
            "limit_data": {"bytes": 100},
            "slicer": {"average_size": 10, "size_variation": 5, "delay": 10},
            "noop": {},
        }.items()
    },
    "toxic-add-upstream": [create(), add_toxic({**LATENCY, "stream": "upstream"})],
    "toxic-add-stream-capitalised": [create(), add_toxic({**LATENCY, "stream": "Upstream"})],
    "toxic-add-stream-empty": [create(), add_toxic({**LATENCY, "stream": ""})],
    "toxic-add-stream-invalid": [create(), add_toxic({**LATENCY, "stream": "sideways"})],
    "toxic-add-unknown-type": [create(), add_toxic({"type": "telepathy"})],
    "toxic-add-missing-type": [create(), add_toxic({"name": "t"})],
    "toxic-add-exists": [create(), add_toxic(LATENCY), add_toxic(LATENCY)],
    "toxic-add-toxicity-above-one": [create(), add_toxic({**LATENCY, "toxicity": 2})],
    "toxic-add-toxicity-negative": [create(), add_toxic({**LATENCY, "toxicity": -0.5})],
    "toxic-add-negative-latency": [create(), add_toxic({"type": "latency", "attributes": {"latency": -5}})],
    "toxic-add-unknown-attribute": [create(), add_toxic({"type": "latency", "attributes": {"latancy": 5}})],
    "toxic-add-attribute-wrong-type": [
        create(),
        add_toxic({"type": "latency", "attributes": {"latency": "x"}}),
    ],
    "toxic-add-bad-json": [create(), add_toxic(b"{")],
    "toxic-add-missing-proxy": [add_toxic(LATENCY, proxy="nope")],
    "toxic-add-name-with-slash": [create(), add_toxic({**LATENCY, "name": "a/b"})],
    "toxic-show": [create(), add_toxic(LATENCY), Call("GET", "/proxies/p/toxics/t")],
    "toxic-show-missing": [create(), Call("GET", "/proxies/p/toxics/nope")],
    "toxic-update": [
        create(),
        add_toxic(LATENCY),
        Call("POST", "/proxies/p/toxics/t", {"attributes": {"latency": 5}}),
    ],
    "toxic-update-patch-toxicity": [
        create(),
        add_toxic(LATENCY),
        Call("PATCH", "/proxies/p/toxics/t", {"toxicity": 0.5}),
    ],
    "toxic-update-whole-object-back": [
        create(),
        add_toxic(LATENCY),
        Call("GET", "/proxies/p/toxics/t"),
        Call("PATCH", "/proxies/p/toxics/t", LAST),
    ],
    "toxic-update-type": [
        create(),
        add_toxic(LATENCY),
        Call("PATCH", "/proxies/p/toxics/t", {"type": "timeout"}),
    ],
    "toxic-update-stream": [
        create(),
        add_toxic(LATENCY),
        Call("PATCH", "/proxies/p/toxics/t", {"stream": "upstream"}),
    ],
    "toxic-update-name": [create(), add_toxic(LATENCY), Call("PATCH", "/proxies/p/toxics/t", {"name": "u"})],
    "toxic-update-toxicity-above-one": [
        create(),
        add_toxic(LATENCY),
        Call("PATCH", "/proxies/p/toxics/t", {"toxicity": 2}),
    ],
    "toxic-update-bad-json": [create(), add_toxic(LATENCY), Call("PATCH", "/proxies/p/toxics/t", b"{")],
    "toxic-update-missing": [create(), Call("PATCH", "/proxies/p/toxics/nope", {"toxicity": 1})],
    "toxic-delete": [create(), add_toxic(LATENCY), Call("DELETE", "/proxies/p/toxics/t")],
    "toxic-delete-missing": [create(), Call("DELETE", "/proxies/p/toxics/nope")],
    "toxic-list-order": [
        create(),
        add_toxic({**LATENCY, "name": "down"}),
        add_toxic({**LATENCY, "name": "up", "stream": "upstream"}),
        Call("GET", "/proxies/p/toxics", compare=streams),
    ],
    "reset": [
        create(),
        add_toxic(LATENCY),
        Call("PATCH", "/proxies/p", {"enabled": False}),
        Call("POST", "/reset"),
        Call("GET", "/proxies/p", compare=enabled),
        Call("GET", "/proxies/p/toxics", compare=len),
    ],
}


def documented_differences() -> set[tuple[str, int, int]]:
    """(case, Toxiproxy's status, ours) for each row of docs/network.md's table of deliberate differences."""
    text = DOCS.read_text()
    section = text.split("### Deliberate differences from Toxiproxy", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (\d{3}) \| (\d{3}) \|", section, flags=re.MULTILINE)
    return {(case, int(theirs), int(ours)) for case, theirs, ours in rows}


@pytest.fixture
def sockets() -> Iterator[dict[str, str]]:
    """Two upstream listeners and one taken address, all on 127.0.0.1."""
    held = []
    for _ in range(3):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        held.append(listener)
    names = ("up", "up2", "taken")
    yield {k: f"127.0.0.1:{s.getsockname()[1]}" for k, s in zip(names, held, strict=True)}
    for listener in held:
        listener.close()


def fill(value: Any, places: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**places) if "{" in value else value
    if isinstance(value, list):
        return [fill(v, places) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, places) for k, v in value.items()}
    return value


def run_case(client: httpx.Client, calls: list[Call], places: dict[str, str]) -> list[tuple[int, Any]]:
    """Send ``calls`` in order from a clean server; return (status, compared field) per call."""
    for name in client.get("/proxies").json():
        client.delete(f"/proxies/{name}")
    results = []
    last: Any = None
    for call in calls:
        body = last if call.body is LAST else fill(call.body, places)
        content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **call.headers}
        answer = client.request(call.method, fill(call.path, places), content=content, headers=headers)
        try:
            last = answer.json()
        except ValueError:
            last = None
        results.append(
            (answer.status_code, call.compare(last) if call.compare and answer.is_success else None)
        )
    for name in client.get("/proxies").json():
        client.delete(f"/proxies/{name}")
    return results


def test_the_api_answers_as_toxiproxy_except_the_documented_refusals(theirs, ours, sockets):
    differences: set[tuple[str, int, int]] = set()
    report = []
    with httpx.Client(base_url=theirs, timeout=10) as real, httpx.Client(base_url=ours, timeout=10) as own:
        for case, calls in CASES.items():
            expected = run_case(real, calls, sockets)
            actual = run_case(own, calls, sockets)
            for step, ((their_status, their_field), (our_status, our_field)) in enumerate(
                zip(expected, actual, strict=True)
            ):
                if (their_status, their_field) != (our_status, our_field):
                    differences.add((case, their_status, our_status))
                    report.append(
                        f"{case} call {step + 1}: Toxiproxy {their_status} {their_field!r}, "
                        f"ours {our_status} {our_field!r}"
                    )
    documented = documented_differences()
    explanation = [
        "undocumented:",
        *sorted(map(str, differences - documented)),
        "documented but gone:",
        *sorted(map(str, documented - differences)),
        "details:",
        *report,
    ]
    assert differences == documented, "\n".join(explanation)
