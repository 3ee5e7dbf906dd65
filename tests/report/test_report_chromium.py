"""The HTML report as a person sees it: rendered offline by headless Chromium, plots not empty.

The page holds the reports of a deviated, a completed (held) and an
interrupted run, each with one client. The screenshot is searched for the
plots' frames (the 1 px #eaeef2 border the report gives each plot); inside
each frame the test counts pixels that are not background, pixels of the
good-request dots and of the shaded fault window. A report whose client
recorded nothing shows no frame at all: the check can fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chaosagenkit.report import load_results, render_reports
from tests.report.conftest import FIXTURES

pytestmark = pytest.mark.slow

FRAME = (234, 238, 242)  # .plot border colour in chaosagenkit/report/html.py
DOT = (31, 119, 180)  # good requests in chaosagenkit/report/plot.py
SHADE_MIN_RED_EXCESS = 12  # a fault window: a light band redder than it is blue


def plot_frames(png) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) inside every rectangle drawn in the frame colour."""
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    is_frame = np.all(pixels == FRAME, axis=2)
    frames = []
    rows = [y for y in range(is_frame.shape[0]) if is_frame[y].sum() >= 400]
    for top, bottom in zip(rows[::2], rows[1::2], strict=False):
        xs = np.flatnonzero(is_frame[top])
        frames.append((int(xs[0]) + 1, top + 1, int(xs[-1]), bottom))
    return frames


def inside(png, frame) -> np.ndarray:
    left, top, right, bottom = frame
    return np.asarray(Image.open(png).convert("RGB")).astype(int)[top:bottom, left:right]


def near(region: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> int:
    return int((np.abs(region - np.array(colour)).sum(axis=2) < tolerance).sum())


@pytest.mark.parametrize("plot_format", ["svg", "png"])
def test_plots_of_deviated_completed_and_interrupted_runs_are_drawn(tmp_path, screenshot, plot_format):
    results = load_results([FIXTURES / "journals" / name for name in
                            ("deviated-expectation.json", "held-with-traffic.json", "interrupted.json")])  # fmt: skip
    page = tmp_path / "report.html"
    render_reports(results, {"html": page}, plot_format=plot_format, workers=1)
    png = screenshot(page, 1280, 5200)

    frames = plot_frames(png)
    assert len(frames) == 3, f"expected 3 plot frames, found {frames}"
    for frame in frames:
        region = inside(png, frame)
        assert region.shape[0] > 250 and region.shape[1] > 600  # drawn at its size, not collapsed
        background = np.all(region >= 250, axis=2).sum()
        assert background < 0.9 * region.shape[0] * region.shape[1]  # not a blank image
        assert near(region, DOT) > 200  # the good requests' dots
        red, blue = region[..., 0], region[..., 2]
        shaded = ((red - blue) > SHADE_MIN_RED_EXCESS) & (red > 230) & (blue > 190)
        assert shaded.sum() > 2000  # the fault window band


def test_a_client_without_outcomes_shows_no_plot(tmp_path, screenshot, write_journal):
    import json

    path = write_journal("held", traffic=True, duration_s=10, rate_per_s=20)
    data = json.loads(path.read_text())
    for column in data["extensions"][-1]["clients"]["caller"]["outcomes"].values():
        column.clear()
    path.write_text(json.dumps(data))
    page = tmp_path / "empty.html"
    render_reports(load_results([path]), {"html": page}, workers=1)
    assert plot_frames(screenshot(page, 1280, 2000)) == []
