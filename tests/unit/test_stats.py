"""One percentile: the probes, the reports and the host's stats give the same number for the same data."""

from __future__ import annotations

import random

import pytest

from chaosagenkit.client.recorder import Recorder
from chaosagenkit.report.outcomes import parse_client
from chaosagenkit.service.chaos_agent import LatencyRecorder
from chaosagenkit.stats import percentile


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([10.0, 20.0], 50, 15.0),
        ([1.0], 95, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 95, 3.85),  # numpy.percentile([1, 2, 3, 4], 95)
        (list(map(float, range(1, 101))), 95, 95.05),
    ],
)
def test_linear_interpolation_between_closest_ranks(values, p, expected):
    assert percentile(values, p) == pytest.approx(expected)


@pytest.mark.parametrize(("values", "p"), [([], 50), ([1.0], 101), ([1.0], -1)])
def test_no_values_or_a_bad_p_is_an_error(values, p):
    with pytest.raises(ValueError):
        percentile(values, p)


def test_probe_report_and_host_agree_on_the_same_outcomes():
    rng = random.Random(7)
    latencies = [round(rng.uniform(1, 400), 2) for _ in range(137)]  # 2 decimals: as journals keep them
    recorder, host = Recorder(), LatencyRecorder()
    for i, ms in enumerate(latencies):
        recorder.record_answer(1000.0 + i, ms, wrong=False, source=0)
        host.record(ms)
    probe = recorder.select().summary()["latency_ms"]  # what send_requests / latency probes return
    report = parse_client("caller", {"t0": 1000.0, "outcomes": recorder.export(1000.0)}).stats([])
    assert probe["p95"] == round(report.latency_p95_ms, 2) == round(host.summary()["p95"], 2)
    assert probe["p50"] == round(report.latency_p50_ms, 2) == round(host.summary()["p50"], 2)
    assert probe["p95"] == round(percentile(sorted(latencies), 95), 2)
