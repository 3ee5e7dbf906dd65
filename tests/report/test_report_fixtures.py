"""The journals stored in tests/fixtures/journals still read as the runs that made them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import xmlschema

from chaosagenkit.report import load_results, write_reports
from chaosagenkit.report.model import Verdict
from tests.report.conftest import FIXTURES

STORED = FIXTURES / "journals"


def test_stored_journals_keep_their_verdicts():
    results = {r.source.rsplit("/", 1)[-1]: r for r in load_results([STORED])}
    assert {name: r.verdict for name, r in results.items()} == {
        "deviated-expectation.json": Verdict.DEVIATES,
        "failed.json": Verdict.FAILED,
        "held-with-traffic.json": Verdict.HOLDS,
        "interrupted.json": Verdict.INTERRUPTED,
        "plain-completed.json": Verdict.HOLDS,
    }
    for name in ("deviated-expectation.json", "held-with-traffic.json", "interrupted.json"):
        (client,) = results[name].run.clients
        assert client.problem is None and len(client) > 100 and results[name].windows
    assert results["plain-completed.json"].run is None


def test_reports_of_the_stored_journals(tmp_path):
    paths = write_reports([STORED], tmp_path)
    xmlschema.XMLSchema(str(FIXTURES / "junit-10.xsd")).validate(paths["junit"])
    root = ET.parse(paths["junit"]).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (
        "24",
        "1",
        "3",
    )  # 4 + 5 + 5 + 7 + 3 cases
    html = (tmp_path / "report.html").read_text()
    assert html.count('<img class="plot"') == 3
