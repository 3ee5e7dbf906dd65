"""Plots of what each client saw: latency and success over time, fault windows shaded.

matplotlib with its Agg renderer (no display, no system library), imported
here only, when an HTML report is drawn: ``chaosagenkit --help`` and the
JUnit/Markdown reports never pay for it. Plots are drawn on a ``Figure``
each thread keeps (never pyplot's global state), so any thread can draw.

What is drawn, and nothing more: every recorded request as a dot at its
latency (errors as red crosses at their latency, or as ticks along the top
when none was recorded), the share of good requests in each time bin (a
bin without requests is a gap, not a zero), and each fault window as a
shaded band. The x axis counts seconds from the run's start.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from typing import Any

from chaosagenkit.report.model import ExperimentResult
from chaosagenkit.report.outcomes import ClientOutcomes

__all__ = ["PLOT_FORMATS", "bin_good_share", "client_plot"]

PLOT_FORMATS = ("svg", "png")
_WIDTH_IN, _HEIGHT_IN, _DPI = 9.0, 4.2, 100
_WINDOW_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
_THREAD = threading.local()  # each thread's reusable figure (see _empty_figure)
_MAX_BINS = 60
_MIN_PER_BIN = 10


def client_plot(result: ExperimentResult, client: ClientOutcomes, fmt: str = "svg") -> str:
    """A ``data:`` URI of the client's plot, ready for ``<img src=...>``."""
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"plot format must be one of {PLOT_FORMATS}, got {fmt!r}")
    import matplotlib  # Figure.savefig picks Agg or SVG by format: no pyplot, no global backend

    t_ref = result.t_ref if result.t_ref is not None else client.t0 or 0.0
    shift = (client.t0 or t_ref) - t_ref
    x = [shift + t for t in client.t]
    good = [client.good(i) for i in range(len(client))]

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "chaosagenkit", "font.size": 9}):
        fig, (latency_ax, share_ax) = _empty_figure()
        _draw_windows(result, t_ref, (latency_ax, share_ax))
        _draw_latency(latency_ax, client, x, good)
        _draw_share(share_ax, x, good)
        title = client.name + (f"  ({client.endpoint})" if client.endpoint else "")
        latency_ax.set_title(title, loc="left", fontsize=10)
        share_ax.set_xlabel("seconds since the run started")
        latency_ax.relim()
        latency_ax.autoscale_view()
        share_ax.set_xlim(*_x_range(x, result, t_ref))
        handles, labels = latency_ax.get_legend_handles_labels()
        if handles:
            fig.legend(
                handles, labels, loc="upper left", bbox_to_anchor=(0.77, 0.93), fontsize=8, frameon=False
            )
        buffer = io.BytesIO()
        if fmt == "svg":
            fig.savefig(buffer, format="svg", metadata={"Date": None})
        else:  # zlib level 1: a fifth bigger, encoded several times faster
            fig.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _x_range(x: list[float], result: ExperimentResult, t_ref: float) -> tuple[float, float]:
    """From the first to the last request or fault window, padded: where something happened."""
    spans = [*x, *(w.start - t_ref for w in result.windows), *(w.end - t_ref for w in result.windows)]
    if not spans:
        return 0.0, 1.0
    low, high = min(spans), max(spans)
    pad = max((high - low) * 0.02, 0.01)
    return low - pad, high + pad


def _empty_figure() -> tuple[Any, tuple[Any, Any]]:
    """This thread's figure, emptied of the previous plot.

    Building a figure with its axes and ticks costs a quarter of a plot, so
    each thread keeps one and removes what the last plot drew. A plot drawn
    on a reused figure is byte-identical to one drawn on a new figure
    (tests/report/test_report_html.py checks it).
    """
    cached = getattr(_THREAD, "figure", None)
    if cached is None:
        from matplotlib.figure import Figure

        # fixed margins: a layout engine would cost more than the rest of the plot
        fig = Figure(figsize=(_WIDTH_IN, _HEIGHT_IN), dpi=_DPI)
        fig.subplots_adjust(left=0.085, right=0.76, top=0.93, bottom=0.12, hspace=0.12)
        axes = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
        cached = _THREAD.figure = (fig, tuple(axes))
        return cached
    fig, axes = cached
    for legend in list(fig.legends):
        legend.remove()
    for ax in axes:
        for artist in [*ax.lines, *ax.patches, *ax.collections, *ax.texts]:
            artist.remove()
        ax.set_yscale("linear")
        ax.set_autoscale_on(True)
    return cached


def bin_good_share(x: list[float], good: list[bool]) -> tuple[list[float], list[float], float]:
    """Bin starts, share of good requests per bin (NaN: no request), and the bin width."""
    if not x:
        return [], [], 1.0
    low, high = min(x), max(x)
    # at most _MAX_BINS bins, and on average _MIN_PER_BIN requests in each: a share of 3 is noise
    width = _nice_width(max((high - low) / _MAX_BINS, (high - low) * _MIN_PER_BIN / len(x)))
    first = math.floor(low / width) * width
    count = int((high - first) // width) + 1
    totals, goods = [0] * count, [0] * count
    for xi, gi in zip(x, good, strict=True):
        b = min(int((xi - first) // width), count - 1)
        totals[b] += 1
        goods[b] += gi
    starts = [first + i * width for i in range(count)]
    shares = [100.0 * g / n if n else math.nan for g, n in zip(goods, totals, strict=True)]
    return starts, shares, width


def _nice_width(raw: float) -> float:
    """The smallest of 0.001, 0.002, 0.005, ..., 1, 2, 5, 10, ... seconds that is >= ``raw``."""
    if raw <= 0.001:
        return 0.001
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if step * magnitude >= raw:
            return step * magnitude
    return 10 * magnitude


def _draw_windows(result: ExperimentResult, t_ref: float, axes: tuple[Any, Any]) -> None:
    colours: dict[str, str] = {}
    for w in result.windows:
        colour = colours.setdefault(w.label, _WINDOW_COLOURS[len(colours) % len(_WINDOW_COLOURS)])
        for n, ax in enumerate(axes):
            ax.axvspan(
                w.start - t_ref,
                max(w.end, w.start) - t_ref,
                color=colour,
                alpha=0.15,
                linewidth=0,
                label=w.label if n == 0 else None,
            )


def _draw_latency(ax: Any, client: ClientOutcomes, x: list[float], good: list[bool]) -> None:
    from matplotlib.ticker import NullLocator
    from matplotlib.transforms import blended_transform_factory

    groups: dict[str, tuple[list[float], list[float]]] = {
        "good": ([], []),
        "wrong": ([], []),
        "error": ([], []),
    }
    unplaced: list[float] = []
    for i, xi in enumerate(x):
        kind = "good" if good[i] else ("wrong" if client.ok[i] else "error")
        latency = client.latency_ms[i]
        if latency is None:
            unplaced.append(xi)
            continue
        groups[kind][0].append(xi)
        groups[kind][1].append(max(latency, 0.01))
    # Line2D markers, not scatter: the same dots, drawn several times faster
    styles = {
        "good": {"marker": "o", "markersize": 1.6, "color": "#1f77b4", "label": "good request"},
        "wrong": {"marker": "^", "markersize": 3.5, "color": "#ff7f0e", "label": "wrong answer"},
        "error": {"marker": "x", "markersize": 3.5, "color": "#d62728", "label": "error"},
    }
    for kind, (gx, gy) in groups.items():
        if gx:
            ax.plot(gx, gy, linestyle="none", markeredgewidth=0.8, rasterized=True, **styles[kind])
    if unplaced:
        ax.plot(
            unplaced,
            [0.98] * len(unplaced),
            transform=blended_transform_factory(ax.transData, ax.transAxes),
            linestyle="none",
            marker="|",
            markersize=5,
            color="#d62728",
            rasterized=True,
            label="error (no latency)",
        )
    latencies = [y for _, ys in groups.values() for y in ys]
    if latencies and max(latencies) / max(min(latencies), 0.01) > 50:
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks cost a third of the plot
    ax.set_ylabel("latency (ms)")
    ax.grid(True, alpha=0.3)


def _draw_share(ax: Any, x: list[float], good: list[bool]) -> None:
    starts, shares, width = bin_good_share(x, good)
    if starts:
        edges = [*starts, starts[-1] + width]
        ax.stairs(shares, edges, baseline=None, color="#2ca02c", linewidth=1.2)  # no drop to 0 at the ends
    ax.set_ylim(-5, 105)
    ax.set_ylabel(f"good %\n(per {width:g} s)")
    ax.grid(True, alpha=0.3)
