"""How long the reports of a whole suite take (issue 6, item 5: under 5 s).

Builds a suite-sized set of journals (40 journals, ~3,000 request outcomes
per client, a few with two clients) with the report tests' real chaoslib
runs plus their seeded traffic, then times, each in a fresh process as a
user or CI runs it:

- ``load only``: reading and classifying the journals, the floor every
  report pays (the baseline of this run);
- ``junit + markdown``: ``chaosagenkit report DIR --junit --markdown``;
- ``all three, png plots`` and ``all three, svg plots``: with the HTML.

Then an in-process breakdown (matplotlib import, per format, per plot) and,
with ``--libraries``, one representative plot drawn by each plotting
library that is installed (matplotlib Agg PNG/SVG, pygal, leather), to
back the choice of library.

Usage: ``python benchmarks/report.py [--repeat 5] [--libraries [--libraries-python PY]] [--no-record]``;
for the library comparison, ``python -m venv /tmp/plotlibs && /tmp/plotlibs/bin/pip install
matplotlib pygal leather`` and pass ``--libraries-python /tmp/plotlibs/bin/python``.
Results go to ``benchmarks/results/report.json`` and ``report.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
LIMIT_S = 5.0

sys.path.insert(0, str(ROOT))


def build_suite(directory: Path, journals: int = 40) -> dict[str, int]:
    """Write ``journals`` realistic journals into ``directory``; return their shape."""
    from tests.report import journals as builders

    logging.disable(logging.CRITICAL)  # chaoslib logs every activity
    with_traffic = [
        builders.held,
        builders.deviated_expectation,
        builders.deviated_after,
        builders.interrupted,
    ]
    without = [builders.failed, builders.aborted]
    outcomes = clients = 0
    for i in range(journals):
        if i % 10 == 9:
            journal = without[i % 2]()
        else:
            journal = with_traffic[i % len(with_traffic)]()
            names = ("caller", "batch") if i % 6 == 0 else ("caller",)
            builders.add_traffic(journal, seed=i, clients=names)
            for client in journal["extensions"][-1]["clients"].values():
                outcomes += len(client["outcomes"]["t"])
                clients += 1
        transport = "tcp" if i % 2 == 0 else "http"
        journal["experiment"]["configuration"]["transport"] = transport
        (directory / f"journal-{i:02d}.json").write_text(json.dumps(journal), encoding="utf-8")
    logging.disable(logging.NOTSET)
    return {"journals": journals, "clients": clients, "outcomes": outcomes}


def time_command(argv: list[str], repeat: int) -> dict[str, float]:
    """Wall time of ``argv`` in a fresh process, after one unmeasured warm-up run."""
    subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        samples.append(time.perf_counter() - started)
    return {
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
        "repeat": repeat,
    }


def breakdown(directory: Path) -> dict[str, float]:
    """In-process times of each step, matplotlib's import measured in a fresh process."""
    probe = (
        "import time; t=time.perf_counter(); import matplotlib; matplotlib.use('Agg');"
        "from matplotlib.figure import Figure; print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    from chaosagenkit.report import load_results
    from chaosagenkit.report.html import html_report
    from chaosagenkit.report.junit import junit_xml
    from chaosagenkit.report.markdown import markdown_summary
    from chaosagenkit.report.parallel import default_workers, render_plots

    steps: dict[str, float] = {"import matplotlib (fresh process)": float(out.stdout)}
    started = time.perf_counter()
    results = load_results([directory])
    steps["load 40 journals"] = time.perf_counter() - started
    for name, render in (("junit", junit_xml), ("markdown", markdown_summary)):
        started = time.perf_counter()
        render(results)
        steps[name] = time.perf_counter() - started
    count = sum(len(r.run.clients) for r in results if r.run)
    for fmt in ("png", "svg"):
        for workers in sorted({1, default_workers()}):
            started = time.perf_counter()
            plots = render_plots(results, fmt, workers)
            elapsed = time.perf_counter() - started
            steps[f"{count} {fmt} plots, {workers} process(es)"] = elapsed
            if workers == 1:
                steps[f"per {fmt} plot, 1 process"] = elapsed / max(count, 1)
        started = time.perf_counter()
        page = html_report(results, plots)
        steps[f"html page around {fmt} plots"] = time.perf_counter() - started
        steps[f"html size with {fmt} (MiB)"] = len(page.encode()) / 2**20
    return {k: round(v, 4) for k, v in steps.items()}


_LIBRARY_PLOT = r"""
import io, math, random, sys, time
lib = sys.argv[1]
t0 = time.perf_counter()
if lib.startswith("matplotlib"):
    import matplotlib; matplotlib.use("Agg"); from matplotlib.figure import Figure
elif lib == "pygal":
    import pygal
elif lib == "leather":
    import leather
t1 = time.perf_counter()
rng = random.Random(1)
x = [i * 0.0133 for i in range(3000)]
y = [rng.lognormvariate(math.log(8), 0.35) + (400 if 10 < t < 20 else 0) for t in x]
def draw():
    if lib.startswith("matplotlib"):
        fig = Figure(figsize=(9, 4.2), dpi=100)
        ax = fig.add_subplot()
        ax.axvspan(10, 20, color="red", alpha=0.15)
        ax.scatter(x, y, s=4, rasterized=True)
        buf = io.BytesIO(); fig.savefig(buf, format=lib.split("-")[1]); return len(buf.getvalue())
    if lib == "pygal":
        chart = pygal.XY(stroke=False, js=[], width=900, height=420)
        chart.add("latency", list(zip(x, y)))
        return len(chart.render())
    chart = leather.Chart("latency"); chart.add_dots(list(zip(x, y)))
    buf = io.StringIO(); chart.to_svg(buf); return len(buf.getvalue())
size = draw(); t2 = time.perf_counter()
for _ in range(5): draw()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, (t3 - t2) / 5, size)
"""


def libraries(python: str) -> dict[str, dict[str, float] | str]:
    """One scatter plot of 3,000 points with a shaded window, per library ``python`` can import."""
    found: dict[str, dict[str, float] | str] = {}
    for lib in ("matplotlib-png", "matplotlib-svg", "pygal", "leather"):
        module = lib.split("-")[0]
        check = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
        if check.returncode != 0:
            found[lib] = "not installed"
            continue
        out = subprocess.run(
            [python, "-c", _LIBRARY_PLOT, lib], check=True, capture_output=True, text=True
        ).stdout.split()
        found[lib] = {
            "import_s": round(float(out[0]), 3),
            "first_plot_s": round(float(out[1]), 3),
            "next_plot_s": round(float(out[2]), 3),
            "bytes": int(out[3]),
        }
    return found


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "chaosagenkit/report", "benchmarks/report.py")
    return head + ("+uncommitted report changes" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--libraries", action="store_true", help="also compare plotting libraries")
    parser.add_argument(
        "--libraries-python",
        default=sys.executable,
        help="interpreter for --libraries (a venv with pygal and leather installed too)",
    )
    parser.add_argument("--no-record", action="store_true", help="print only, write no result file")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="chaosagenkit-report-bench-") as tmp:
        journals, out = Path(tmp) / "journals", Path(tmp) / "reports"
        journals.mkdir()
        shape = build_suite(journals)
        cli = [sys.executable, "-m", "chaosagenkit", "report", str(journals)]
        load = [
            sys.executable,
            "-c",
            f"from chaosagenkit.report import load_results; load_results([{str(journals)!r}])",
        ]
        both = [*cli, "--junit", str(out / "junit.xml"), "--markdown", str(out / "summary.md")]
        html = [*both, "--html", str(out / "report.html")]
        runs = {
            "load only (baseline)": time_command(load, args.repeat),
            "junit + markdown": time_command(both, args.repeat),
            "all three, png plots": time_command([*html, "--plot-format", "png"], args.repeat),
            "all three, svg plots": time_command([*html, "--plot-format", "svg"], args.repeat),
        }
        steps = breakdown(journals)
    record = {
        "benchmark": "report",
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "matplotlib": _version("matplotlib"),
            # other work on the machine slows every run alike; compare with the baseline row
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "suite": shape,
        "limit_s": LIMIT_S,
        "runs": runs,
        "steps": steps,
    }
    if args.libraries:
        record["libraries"] = libraries(args.libraries_python)
    print(json.dumps(record, indent=2))
    if not args.no_record:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "report.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        (RESULTS / "report.md").write_text(_markdown(record), encoding="utf-8")
    # the median: one slow sample says more about the neighbours than about the report
    slowest = max(r["median_s"] for name, r in runs.items() if name.startswith("all three"))
    return 0 if slowest < LIMIT_S else 1


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "not installed"


def _markdown(record: dict) -> str:
    suite = record["suite"]
    lines = [
        "# Report benchmark",
        "",
        f"Commit {record['commit']}, {record['date']}, {record['machine']['cpus']} CPUs, "
        f"Python {record['machine']['python']}, matplotlib {record['machine']['matplotlib']}, "
        f"1-min load average {record['machine']['load_average_1min'][0]} before, "
        f"{record['machine']['load_average_1min'][1]} after.",
        f"Suite: {suite['journals']} journals, {suite['clients']} clients, {suite['outcomes']} request outcomes.",
        f"Limit: the whole report in under {record['limit_s']:.0f} s (issue 6, item 5), judged on the median.",
        "",
        "| Run (fresh process, wall time) | median | min | max |",
        "|---|---|---|---|",
    ]
    for name, r in record["runs"].items():
        lines.append(f"| {name} | {r['median_s']:.2f} s | {r['min_s']:.2f} s | {r['max_s']:.2f} s |")
    lines += ["", "| Step (in process) | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in record["steps"].items()]
    if "libraries" in record:
        lines += [
            "",
            "| Library (3,000-point scatter, shaded window) | import | first plot | next plot | bytes |",
            "|---|---|---|---|---|",
        ]
        for lib, r in record["libraries"].items():
            if isinstance(r, str):
                lines.append(f"| {lib} | {r} | | | |")
            else:
                lines.append(
                    f"| {lib} | {r['import_s']:.3f} s | {r['first_plot_s']:.3f} s | "
                    f"{r['next_plot_s']:.3f} s | {r['bytes']} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
