"""What ``chaosagenkit explore`` finds unaided in agenkit 0.92.2, and how fast (issue 13, item 5).

For each seed, ``chaosagenkit explore --transport tcp --budget-s B --seed S``
runs in a child process (one after the other: each needs the machine to
itself as much as it can get), with the defaults: the echo target, the two
default stacks, every fault source that reaches tcp. Then every finding is
classified into the agenkit defect it shows (``DEFECTS``: rules over its
invariant, its minimal schedule's fault and traffic kinds, and its evidence,
in order; the first that matches wins) and, per defect: in how many seeds it
was found within the budget, and the median time to find it (the end of the
trial that first showed it, over the seeds that found it; a seed that did not
find it is reported as such, not counted as the budget).

Usage: ``python benchmarks/explore.py [--seeds 1 2 3] [--budget-s 600]
[--work DIR] [--reuse] [--lock FILE] [--no-record]``; ``--reuse`` classifies
explorations already in ``--work`` (``seed<S>/``) instead of running them
again; ``--lock`` holds a lock file (``flock``) during each exploration, so
other work on a shared machine waits rather than competes. Results go to
``benchmarks/results/explore.json`` and ``explore.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: import `benchmarks`

from benchmarks.common import ROOT, machine, machine_line, write_results

MEASURED_CODE = ("chaosagenkit/explore", "benchmarks/explore.py")

#: (defect id, what it is, rule). A rule sees the finding's invariant, fault kinds, traffic event kinds,
#: the text of its evidence and kinds, and its minimal schedule's faults.
DEFECTS: list[tuple[str, str, Any]] = [
    (
        "F4",
        "RetryDecorator retries malformed answers (docs/FINDINGS.md F4)",
        lambda inv, faults, events, text, params: inv == "non_transient_errors_not_retried",
    ),
    (
        "F5",
        "a non-retryable error reaches the caller as a bare Exception (F5)",
        lambda inv, faults, events, text, params: (
            inv == "errors_are_agenkit_types" and "builtins.Exception" in text
        ),
    ),
    (
        "F6",
        "an open circuit is retried with backoff, so it does not fail fast (F6)",
        lambda inv, faults, events, text, params: inv == "open_circuit_fails_fast",
    ),
    (
        "N1",
        "a half-open circuit breaker admits every concurrent call as a trial (new)",
        lambda inv, faults, events, text, params: inv == "half_open_admits_limited_trials",
    ),
    (
        "F3",
        "a frame announcing more than 10 MiB poisons the tcp connection (F3)",
        lambda inv, faults, events, text, params: (
            inv == "recovers_after_faults"
            and "MalformedPayloadError" in text
            and any(
                p.get("size_bytes", 0) > 10 * 1024 * 1024 or p.get("kind") == "oversized_length"
                for p in params
            )
        ),
    ),
    (
        "F2",
        "after a timeout the late answer goes to the next request (F2)",
        lambda inv, faults, events, text, params: (
            inv == "answers_belong_to_requests" or (inv == "recovers_after_faults" and "wrong_answer" in text)
        ),
    ),
    (
        "N2",
        "a timeout in the middle of a frame poisons the tcp connection for good (new)",
        lambda inv, faults, events, text, params: (
            inv == "recovers_after_faults" and "MalformedPayloadError" in text
        ),
    ),
    (
        "F1",
        "RemoteAgent over tcp never reconnects after its connection closes (F1)",
        lambda inv, faults, events, text, params: (
            (
                inv == "recovers_after_faults"
                or (inv == "no_errors_without_faults" and "fresh_clients" not in events)
            )
            and any(
                e in text
                for e in (
                    "ConnectionError",
                    "ConnectionClosedError",
                    "ConnectionResetError",
                    "BrokenPipeError",
                )
            )
        ),
    ),
    (
        "O1",
        "concurrent first calls on a fresh client race to connect (FINDINGS, other behaviours)",
        lambda inv, faults, events, text, params: (
            inv == "no_errors_without_faults" and "fresh_clients" in events
        ),
    ),
    (
        "N3",
        "RemoteAgent waits for its connection outside its own timeout (new)",
        lambda inv, faults, events, text, params: inv == "requests_end_by_deadline",
    ),
]


def classify(finding: dict[str, Any]) -> str:
    """The defect id of ``finding`` (``DEFECTS``' first matching rule), or ``?<invariant>``."""
    signature = finding["signature"]
    text = " ".join([*(finding.get("evidence") or []), *(signature.get("kinds") or [])])
    params = [f.get("params") or {} for f in finding["minimal_schedule"]["faults"]]
    for defect, _, rule in DEFECTS:
        if rule(finding["invariant"], set(signature["faults"]), set(signature["traffic"]), text, params):
            return defect
    return f"?{finding['invariant']}"


def explore(seed: int, budget_s: float, out: Path, lock: Path | None) -> dict[str, Any]:
    """Run one exploration in a child process (holding ``lock``, if given); return its exit code and wall time."""
    command = [
        sys.executable, "-m", "chaosagenkit", "explore", "--transport", "tcp",
        "--budget-s", str(budget_s), "--seed", str(seed), "--out", str(out),
    ]  # fmt: skip
    if lock is not None:
        command = ["flock", str(lock), *command]
    started = time.monotonic()
    with (out.parent / f"seed{seed}.out").open("w") as console:
        code = subprocess.run(command, cwd=ROOT, stdout=console, stderr=subprocess.STDOUT).returncode
    return {"exit_code": code, "wall_s": round(time.monotonic() - started, 1)}


def summarise(seed: int, out: Path, run: dict[str, Any] | None) -> dict[str, Any]:
    """One seed's exploration: its summary and each finding with its defect."""
    summary = json.loads((out / "explore.json").read_text())
    findings = json.loads((out / "findings.json").read_text())
    return {
        "seed": seed,
        **(run or {}),
        "runs": summary["runs"],
        "trials": summary["trials"],
        "faults_tried": summary["faults_tried"],
        "shrink_steps": summary["shrink_steps"],
        "elapsed_s": summary["elapsed_s"],
        "unjudged_runs": len(summary["unjudged_runs"]),
        "findings": [
            {
                "defect": classify(f),
                "invariant": f["invariant"],
                "minimal_schedule": f["summary"],
                "reproduced": f"{f['reproduction']['reproduced']}/{f['reproduction']['runs']}",
                "confirmed": f["reproduction"].get("confirmed"),
                "time_to_find_s": f["time_to_first_violation_s"],
                "experiment": f["experiment"],
            }
            for f in findings
        ],
    }


def by_defect(seeds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per defect: the seeds that found it, the median time to find it, its findings."""
    table: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        first: dict[str, float] = {}
        for finding in seed["findings"]:
            defect = finding["defect"]
            first[defect] = min(first.get(defect, float("inf")), finding["time_to_find_s"])
        for defect, found_s in first.items():
            entry = table.setdefault(defect, {"times_s": {}, "seeds_found": 0})
            entry["times_s"][seed["seed"]] = found_s
            entry["seeds_found"] += 1
    for entry in table.values():
        entry["median_time_to_find_s"] = round(statistics.median(entry["times_s"].values()), 1)
    return dict(sorted(table.items()))


def markdown(record: dict[str, Any]) -> str:
    names = {d: what for d, what, _ in DEFECTS}
    seeds = record["seeds"]
    lines = [
        "# What `chaosagenkit explore` finds in agenkit 0.92.2",
        "",
        machine_line(record["machine"]),
        "",
        f"`chaosagenkit explore --transport tcp --budget-s {record['budget_s']:g} --seed S` for S in "
        f"{', '.join(str(s['seed']) for s in seeds)} (defaults: the echo target, both default stacks, "
        "every fault source that reaches tcp), one after the other.",
        "",
        *([record["note"], ""] if record.get("note") else []),
        "| defect | what | found in | median time to find | times (s) per seed |",
        "|---|---|---|---|---|",
    ]
    for defect, entry in record["defects"].items():
        times = ", ".join(f"{seed}: {t:g}" for seed, t in entry["times_s"].items())
        lines.append(
            f"| {defect} | {names.get(defect, 'unclassified')} | {entry['seeds_found']} of {len(seeds)} seeds "
            f"| {entry['median_time_to_find_s']:g} s | {times} |"
        )
    for seed in seeds:
        lines += [
            "",
            f"## Seed {seed['seed']}",
            "",
            f"{seed['runs']} runs ({seed['trials']} trials, {seed['faults_tried']} faults tried, "
            f"{seed['shrink_steps']} shrinking steps) in {seed['elapsed_s']:g} s; exit code "
            f"{seed.get('exit_code', '-')}; {seed['unjudged_runs']} run(s) not judged.",
            "",
            "| defect | invariant | minimal schedule | reproduced | found after |",
            "|---|---|---|---|---|",
        ]
        for f in seed["findings"]:
            mark = "" if f["confirmed"] else " (unconfirmed)"
            lines.append(
                f"| {f['defect']} | {f['invariant']} | {f['minimal_schedule']} | {f['reproduced']}{mark} "
                f"| {f['time_to_find_s']:g} s |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget-s", type=float, default=600.0)
    parser.add_argument("--work", type=Path, default=ROOT / "artifacts" / "explore-bench")
    parser.add_argument("--reuse", action="store_true", help="classify explorations already in --work")
    parser.add_argument(
        "--lock", type=Path, default=None, help="hold this lock file (flock) during each exploration"
    )
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--note", default="", help="a sentence recorded with the results (how they were made)"
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    seeds = []
    for seed in args.seeds:
        out = args.work / f"seed{seed}"
        reuse = args.reuse and (out / "findings.json").exists()
        run = None if reuse else explore(seed, args.budget_s, out, args.lock)
        seeds.append(summarise(seed, out, run))
        print(json.dumps({k: v for k, v in seeds[-1].items() if k != "findings"}), flush=True)
    record = {
        "machine": machine(*MEASURED_CODE),
        "budget_s": args.budget_s,
        "note": args.note,
        "seeds": seeds,
    }
    record["defects"] = by_defect(seeds)
    text = markdown(record)
    print(text)
    if not args.no_record:
        write_results("explore", record, text)


if __name__ == "__main__":
    main()
