"""Prometheus's text format as chaosagenkit.metrics writes it, read back by prometheus_client's parser."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from chaosagenkit.metrics import Family, render


def test_what_is_written_is_read_back_the_same():
    counter = Family("x_bytes_total", "counter", "Bytes.\nTwo lines of help, a back\\slash.")
    counter.add(5, {"proxy": 'we"ird\\name\nwith a newline', "direction": "upstream"})
    counter.add(2**53 + 1, {"proxy": "big", "direction": "downstream"})
    gauge = Family("x_up", "gauge", "Up.")
    gauge.add(True)
    gauge.add(0.25, {"part": "quarter"})
    histogram = Family("x_seconds", "histogram", "Durations.")
    histogram.add(1, {"le": "0.1"}, "_bucket")
    histogram.add(3, {"le": "+Inf"}, "_bucket")
    histogram.add(0.75, suffix="_sum")
    histogram.add(3, suffix="_count")
    empty = Family("x_nothing_total", "counter", "No samples yet.")
    families = {f.name: f for f in text_string_to_metric_families(render([counter, gauge, histogram, empty]))}
    assert set(families) == {"x_bytes", "x_up", "x_seconds", "x_nothing"}
    assert families["x_bytes"].type == "counter"
    assert families["x_bytes"].documentation == "Bytes.\nTwo lines of help, a back\\slash."
    by_proxy = {s.labels["proxy"]: s.value for s in families["x_bytes"].samples}
    assert by_proxy == {'we"ird\\name\nwith a newline': 5, "big": 2**53 + 1}
    assert [s.value for s in families["x_up"].samples] == [1, 0.25]
    assert [(s.name, s.value) for s in families["x_seconds"].samples] == [
        ("x_seconds_bucket", 1),
        ("x_seconds_bucket", 3),
        ("x_seconds_sum", 0.75),
        ("x_seconds_count", 3),
    ]
    assert families["x_nothing"].samples == []


def test_special_values():
    family = Family("x", "gauge", "Specials.")
    for value in (math.inf, -math.inf, math.nan):
        family.add(value, {"v": repr(value)})
    text = render([family])
    assert 'x{v="inf"} +Inf' in text and 'x{v="-inf"} -Inf' in text and 'x{v="nan"} NaN' in text
    assert [s.value for s in next(iter(text_string_to_metric_families(text))).samples][:2] == [
        math.inf,
        -math.inf,
    ]
