"""The HTML report: one self-contained file with verdicts, probes, timeline and plots."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest

from chaosagenkit.report.html import html_report
from chaosagenkit.report.markdown import anchor
from chaosagenkit.report.model import read_result
from chaosagenkit.report.parallel import render_plots
from chaosagenkit.report.plot import bin_good_share, client_plot
from chaosagenkit.report.text import share_text, verdict_tally
from tests.report import journals as builders
from tests.report.conftest import KINDS


class Page(HTMLParser):
    """Every tag with its attributes, and the text, of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]


@pytest.fixture
def traffic_results(journal):
    kinds = ("deviated_expectation", "held", "interrupted")
    return [read_result(builders.add_traffic(journal(k), seed=i, duration_s=20, rate_per_s=40), f"{k}.json")
            for i, k in enumerate(kinds)]  # fmt: skip


def test_page_is_self_contained(traffic_results, journal):
    results = traffic_results + [read_result(journal(k), f"{k}.json") for k in KINDS]
    page = Page(html_report(results, render_plots(results, "svg", workers=1)))
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "action"):
            value = attrs.get(name)
            if value is not None:  # only in-page anchors and inline data
                assert value.startswith(("#", "data:")), (tag, name, value[:80])
    assert ("meta", {"charset": "utf-8"}) in page.tags
    assert "url(" not in "".join(page.text)  # no stylesheet fetches anything either


def test_one_plot_per_client_as_inline_images(traffic_results):
    plots = render_plots(traffic_results, "svg", workers=1)
    page = Page(html_report(traffic_results, plots))
    images = page.all("img")
    assert len(images) == 3 == len(plots)
    for img in images:
        assert img["src"].startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(img["src"].split(",", 1)[1]).decode()
        assert "<svg" in svg and "seconds since the run started" in svg
        assert "latency and success of caller" in img["alt"]


def test_png_plots_are_real_png(traffic_results):
    uri = client_plot(traffic_results[0], traffic_results[0].run.clients[0], "png")
    assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="plot format"):
        client_plot(traffic_results[0], traffic_results[0].run.clients[0], "gif")


def test_sections_show_verdict_probes_tolerances_and_timeline(traffic_results):
    html = html_report(traffic_results, {})
    page = Page(html)
    ids = [attrs["id"] for tag, attrs in page.tags if tag == "section"]
    assert ids == [anchor(i, r) for i, r in enumerate(traffic_results)]
    links = [a["href"] for a in page.all("a")]
    assert links == [f"#{i}" for i in ids]
    text = " ".join(page.text)
    assert "circuit-state" in text and '"closed"' in text and '"open"' in text and "not met" in text
    assert "between 0.95 and 1.0" in text  # hypothesis tolerance
    assert "target_proxy: reset_peer" in text and "cleared" in text  # fault window
    assert "good in fault windows" in text
    assert "recorded holds, observed deviates (differs" in text
    count, verdicts = verdict_tally(traffic_results)
    assert f"{count}: {verdicts}" in text  # the same tally as the Markdown summary, in plain text
    assert re.search(r"\d+\.\d% of \d+", text), "shares say what they are a share of"


def test_shares_and_tallies_read_the_same_in_every_format():
    assert (share_text(None), share_text(0.8333), share_text(0.8333, 120)) == ("—", "83%", "83.3% of 120")
    assert verdict_tally([]) == ("0 experiments", "")


def test_missing_things_are_said_to_be_missing(journal):
    html = html_report(
        [read_result(journal("plain"), "p.json"), read_result(journal("aborted"), "a.json")], {}
    )
    assert "not recorded: the journal has no chaosagenkit extension" in html
    assert "no request outcomes recorded: no client was declared" in html
    assert "did not finish" in html


def test_journal_text_is_escaped(journal):
    data = journal("failed")
    data["experiment"]["title"] = "<img src=x onerror=alert(1)>"
    data["steady_states"]["before"]["probes"][0]["exception"] = ["<script>alert(2)</script>\n"]
    html = html_report([read_result(data, "f.json")], {})
    assert "<img src=x" not in html and "<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_unusable_client_is_explained_not_plotted(journal):
    data = builders.add_traffic(journal("held"), duration_s=10, rate_per_s=20)
    data["extensions"][-1]["clients"]["caller"]["outcomes"]["ok"].pop()
    result = read_result(data, "h.json")
    plots = render_plots([result], "svg", workers=1)
    html = html_report([result], plots)
    assert plots == {} and "<img" not in html
    assert "outcome columns have different lengths" in html


def test_plots_drawn_by_helper_processes_match_plots_drawn_here(journal):
    results = [read_result(builders.add_traffic(journal("held"), seed=i, duration_s=6, rate_per_s=20), f"{i}.json")
               for i in range(8)]  # fmt: skip
    here = render_plots(results, "svg", workers=1)
    shared = render_plots(results, "svg", workers=2)  # 8 plots: one helper process draws half
    assert here.keys() == shared.keys() == {(i, 0) for i in range(8)}
    assert here == shared  # svg output is deterministic (fixed hash salt, no date)


def test_a_failing_helper_costs_only_time(journal, monkeypatch, caplog):
    results = [read_result(builders.add_traffic(journal("held"), seed=i, duration_s=6, rate_per_s=20), f"{i}.json")
               for i in range(6)]  # fmt: skip
    # A fake interpreter: the only way to make a helper process fail on purpose.
    monkeypatch.setattr("chaosagenkit.report.parallel.sys.executable", "/bin/false")
    monkeypatch.setattr("chaosagenkit.report.parallel.MIN_PLOTS_PER_WORKER", 2)
    plots = render_plots(results, "svg", workers=2)
    assert plots.keys() == {(i, 0) for i in range(6)}
    assert "plot helper failed" in caplog.text


@pytest.mark.parametrize(
    "x, good, starts, shares, width",
    [
        ([], [], [], [], 1.0),
        # 30 requests over 0.29 s: 10 a bin on average makes 0.1 s bins; the middle one is empty
        (
            [i / 150 for i in range(15)] + [0.2 + i / 150 for i in range(15)],
            [True] * 15 + [False] * 15,
            [0.0, 0.1, 0.2],
            [100.0, None, 0.0],
            0.1,
        ),
    ],
)
def test_good_share_bins_leave_empty_bins_empty(x, good, starts, shares, width):
    got_starts, got_shares, got_width = bin_good_share(x, good)
    assert [round(s, 6) for s in got_starts] == starts and got_width == width
    assert [None if s != s else s for s in got_shares] == shares  # NaN: no request, not zero


@pytest.mark.parametrize("count, span, width, bins", [(3000, 40.0, 1, 40), (60_000, 600.0, 10, 60),
                                                     (176, 10.0, 1, 10), (2, 600.0, 5000, 1)])  # fmt: skip
def test_bins_hold_enough_requests_and_are_never_too_many(count, span, width, bins):
    x = [span * i / (count - 1) for i in range(count)]
    _, shares, got_width = bin_good_share(x, [True] * count)
    assert got_width == width and len(shares) in (bins, bins + 1)
    assert re.fullmatch(r"\d+(\.\d+)?", f"{got_width:g}")


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_a_plot_on_the_reused_figure_equals_one_on_a_new_figure(journal, fmt):
    import threading

    kinds = ("deviated_after", "held", "interrupted", "deviated_expectation")  # log and linear scales
    results = [read_result(builders.add_traffic(journal(k), seed=i, duration_s=8, rate_per_s=30), f"{k}.json")
               for i, k in enumerate(kinds)]  # fmt: skip
    outcomes = results[1].run.clients[0]
    outcomes.wrong[5], outcomes.latency_ms[7], outcomes.ok[7] = 1, None, 0  # every marker kind
    reused = [client_plot(r, r.run.clients[0], fmt) for r in results]  # one thread: one figure

    def fresh(result) -> str:  # a new thread draws on a new figure
        drawn: list[str] = []
        worker = threading.Thread(
            target=lambda: drawn.append(client_plot(result, result.run.clients[0], fmt))
        )
        worker.start()
        worker.join()
        return drawn[0]

    assert [fresh(r) for r in results] == reused
    assert len(set(reused)) == len(reused)  # and the plots do differ from each other
