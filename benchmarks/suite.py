"""The whole experiment suite, serial vs parallel (``chaosagenkit run --jobs N``): wall time and verdicts.

Each mode runs the whole suite once as CI does (``chaosagenkit run
experiments --against-recorded --jobs N`` in a fresh process, journals in
a temporary folder). The serial run is the baseline; for every parallel
run the benchmark also checks that each run's verdict and set of
deviations are the serial run's (``chaosagenkit verdicts`` semantics), and
records any difference: a parallel run that changes a verdict is a
finding, not a speed-up.

Usage: ``python benchmarks/suite.py [--jobs 1 2 4] [--lock /tmp/chaosagenkit-heavy.lock] [--no-record]``.
With ``--lock`` each mode takes that lock (``flock``) for itself, so the
machine is not shared with other timing-sensitive work while it runs.
Results go to ``benchmarks/results/suite.json`` and ``suite.md`` with the
commit measured.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, machine_line, write_results  # noqa: E402


@contextmanager
def locked(path: str | None):
    if not path:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_suite(jobs: int, journals: Path) -> dict[str, Any]:
    """One whole-suite run in a fresh process: wall time, exit code, each run's verdict and deviations."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "chaosagenkit", "run", str(ROOT / "experiments"), "--against-recorded",
         "--journals", str(journals), "--jobs", str(jobs)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    observed = {}
    for path in sorted(journals.glob("*.json")):
        journal = json.loads(path.read_text())
        ext = next(e for e in journal.get("extensions") or [] if e.get("name") == "chaosagenkit")
        observed[path.stem] = {"verdict": ext.get("verdict"), "deviations": ext.get("deviations") or []}
    return {
        "jobs": jobs,
        "wall_s": round(wall, 1),
        "exit_code": done.returncode,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "runs": len(observed),
        "observed": observed,
        "problems": [
            line
            for line in done.stdout.splitlines()
            if line.startswith(("DIFFERENT", "LEFT", "BASE", "FAIL", "ABORT", "INTERR"))
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--lock", default=None, help="take this flock around each mode")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    info = machine("chaosagenkit", "experiments")
    modes = []
    with tempfile.TemporaryDirectory(prefix="suite-bench-") as tmp:
        for jobs in args.jobs:
            with locked(args.lock):
                mode = run_suite(jobs, Path(tmp) / f"jobs-{jobs}")
            print(
                f"--jobs {jobs}: {mode['wall_s']} s, exit {mode['exit_code']}, {mode['runs']} runs",
                flush=True,
            )
            modes.append(mode)
    baseline = modes[0]
    for mode in modes[1:]:
        mode["differs_from_serial"] = sorted(
            run for run, seen in mode["observed"].items() if seen != baseline["observed"].get(run)
        )
        mode["speedup"] = round(baseline["wall_s"] / mode["wall_s"], 2)
    record = {"machine": info, "modes": modes}
    lines = [
        "# Suite benchmark: serial vs parallel",
        "",
        machine_line(info),
        "",
        "`chaosagenkit run experiments --against-recorded --jobs N`, the whole suite once per mode, "
        "fresh process each; the first mode is the baseline.",
        "",
        "| jobs | wall time | speed-up | exit | runs | verdicts differing from the baseline | load before / after |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode in modes:
        differing = ", ".join(mode.get("differs_from_serial", [])) or ("—" if mode is baseline else "none")
        lines.append(
            f"| {mode['jobs']} | {mode['wall_s']} s | {mode.get('speedup', 1.0)}x | {mode['exit_code']} | "
            f"{mode['runs']} | {differing} | {mode['load_before']} / {mode['load_after']} |"
        )
    problems = [(m["jobs"], p) for m in modes for p in m["problems"]]
    if problems:
        lines += ["", "What each mode reported (exit code 2 or 1):", ""]
        lines += [f"- jobs {jobs}: {p}" for jobs, p in problems]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    if not args.no_record:
        write_results("suite", record, markdown)


if __name__ == "__main__":
    main()
