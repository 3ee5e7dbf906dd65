"""Reports of a real run: a chaos host serving agenkit's echo agent, a real client, real traffic.

Nothing here is made up: chaosagenkit.control starts the server and the
client, the client harness records every request, and the journal carries
what they did. This checks the contract between the control, the client
harness and the reports (the outcome columns, t0, the clock offsets).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import xmlschema
from chaoslib.experiment import run_experiment

from chaosagenkit.report import load_results, write_reports
from chaosagenkit.report.model import Verdict
from tests.report.conftest import FIXTURES

pytestmark = [pytest.mark.slow]


def client_activity(kind: str, name: str, module: str, func: str, tolerance=None, pauses=None, **arguments):
    return activity(kind, name, f"chaosagenkit.client.{module}", func, tolerance, pauses, **arguments)


def activity(kind: str, name: str, module: str, func: str, tolerance=None, pauses=None, **arguments):
    entry = {"type": kind, "name": name, "provider": {
        "type": "python", "module": module, "func": func, "arguments": arguments}}  # fmt: skip
    if tolerance is not None:
        entry["tolerance"] = tolerance
    if pauses:
        entry["pauses"] = pauses
    return entry


def test_reports_of_a_real_run_with_real_client_outcomes(tmp_path):
    all_ok = {"type": "range", "target": "success_ratio", "range": [1.0, 1.0]}
    experiment = {
        "title": "Echo under steady traffic",
        "description": "a real server and client; the report must show what the client saw",
        "configuration": {"transport": "tcp"},
        "controls": [{"name": "chaosagenkit", "provider": {
            "type": "python", "module": "chaosagenkit.control", "arguments": {
                "seed": "5",
                "servers": [{"name": "target", "agent": "chaosagenkit.targets:echo"}],
                "clients": [{"name": "caller", "server": "target"}],
            }}}],
        "steady-state-hypothesis": {"title": "the echo agent answers", "probes": [
            client_activity("probe", "answers", "probes", "send_requests", all_ok, client="caller", count=5)]},
        "method": [
            client_activity("action", "traffic", "actions", "start_traffic", pauses={"after": 1},
                            client="caller", rate_per_s=50, duration_s=20, concurrency=2),
            # half the requests fail for 1.5 s; the fault expires before it is cleared
            activity("action", "fail half", "chaosagenkit.service.actions", "inject_failure_rate",
                     pauses={"after": 2.5}, server="target", rate=0.5, duration_s=1.5),
            activity("action", "clear", "chaosagenkit.service.actions", "clear_faults", server="target",
                     pauses={"after": 1}),
            client_activity("probe", "no wrong answers", "probes", "wrong_answers", 0, client="caller"),
            client_activity("action", "stop traffic", "actions", "stop_traffic", client="caller"),
        ],
    }  # fmt: skip
    journal = run_experiment(experiment)
    assert journal["status"] == "completed", journal
    path = tmp_path / "journals" / "echo.tcp.json"
    path.parent.mkdir()
    path.write_text(json.dumps(journal, default=str))

    (result,) = load_results([path])
    assert result.verdict == Verdict.HOLDS
    assert result.run.seed == 5 and result.transport == "tcp"
    (client,) = result.run.clients
    assert client.problem is None and client.endpoint.startswith("tcp://127.0.0.1:")
    (window,) = result.windows
    assert (window.target, window.kind, window.ended_by) == ("target", "failure_rate", "expired")
    assert window.end - window.start == pytest.approx(1.5)
    stats = result.client_stats(client)
    assert stats.requests >= 5 + 5 + 50  # the probes' requests and at least some of the traffic
    assert stats.wrong == 0 and stats.latency_p50_ms > 0
    # the outcomes line up with the window: failures inside, (almost) none outside; the server's
    # clock starts the fault a moment before the timeline records it, hence "almost"
    assert stats.requests_in_faults >= 20 and stats.errors >= 5
    assert stats.good_in_faults <= 0.8 and stats.good_outside_faults >= 0.95
    # the client's clock sits inside the run: its requests fall between the run's start and end
    # (send times are recorded to the millisecond, hence the 1 ms of slack at either end)
    offsets = [client.t0 + t - result.t_ref for t in client.t]
    assert min(offsets) >= -0.001 and max(offsets) <= result.duration_s + 0.001

    paths = write_reports([path.parent], tmp_path / "reports")
    xmlschema.XMLSchema(str(FIXTURES / "junit-10.xsd")).validate(paths["junit"])
    (suite,) = ET.parse(paths["junit"]).getroot().findall("testsuite")
    assert suite.get("name") == "echo.tcp" and suite.get("failures") == "0"
    html = (tmp_path / "reports" / "report.html").read_text()
    assert html.count('<img class="plot"') == 1
