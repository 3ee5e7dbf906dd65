"""Draw many client plots on every core: the HTML report of a whole suite in seconds.

A plot takes matplotlib 50-80 ms and a suite has dozens, so the plots are
split into one shard per core. This process draws the first shard while
helper processes draw the others. Helpers are plain
``python -m chaosagenkit.report.parallel`` children (not multiprocessing,
whose spawn start would re-run a caller's unguarded main module), fed the
pickled results on stdin and answering with pickled ``data:`` URIs on
stdout. Whatever happens they are waited for, and killed when this process
is interrupted. A helper that fails costs only time: its shard is drawn
here, where a real error surfaces with its own traceback.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from typing import Any

from chaosagenkit.report.model import ExperimentResult
from chaosagenkit.report.plot import client_plot

__all__ = ["MIN_PLOTS_PER_WORKER", "default_workers", "render_plots"]

logger = logging.getLogger(__name__)

#: below this many plots per extra process, starting it costs more than it saves
MIN_PLOTS_PER_WORKER = 6

#: (index of the result, index of the client in result.run.clients)
PlotKey = tuple[int, int]
_Job = tuple[PlotKey, ExperimentResult, int]


def default_workers() -> int:
    """One process per core, at most 4 (matplotlib's import is paid by each)."""
    return max(1, min(os.cpu_count() or 1, 4))


def render_plots(results: list[ExperimentResult], fmt: str, workers: int | None = None) -> dict[PlotKey, str]:
    """Every plottable client's plot, keyed by (result index, client index)."""
    jobs: list[_Job] = [
        ((i, j), r, j)
        for i, r in enumerate(results)
        for j, c in enumerate(r.run.clients if r.run else [])
        if c.t and not c.problem
    ]
    workers = default_workers() if workers is None else max(1, workers)
    workers = min(workers, max(1, len(jobs) // MIN_PLOTS_PER_WORKER))
    shards = [jobs[k::workers] for k in range(workers)]
    helpers = [_start(shard, fmt) for shard in shards[1:]]
    try:
        plots = _draw(shards[0], fmt)
        for helper, shard in zip(helpers, shards[1:], strict=True):
            plots.update(_collect(helper, shard, fmt))
    finally:
        for helper in helpers:
            if helper is not None and helper.poll() is None:
                helper.kill()
                helper.wait()
    return plots


def _draw(jobs: list[_Job], fmt: str) -> dict[PlotKey, str]:

    return {key: client_plot(result, result.run.clients[j], fmt) for key, result, j in jobs}  # type: ignore[union-attr]


def _start(jobs: list[_Job], fmt: str) -> subprocess.Popen[bytes] | None:
    try:
        helper = subprocess.Popen(
            [sys.executable, "-m", "chaosagenkit.report.parallel"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as e:
        logger.warning(f"chaosagenkit report: plots drawn in one process ({e})")
        return None
    try:  # the helper reads everything at once, before it draws: this write cannot deadlock
        helper.stdin.write(pickle.dumps((fmt, jobs)))  # type: ignore[union-attr]
        helper.stdin.close()  # type: ignore[union-attr]
    except OSError:
        pass  # it died at start-up: _collect sees its exit status and draws the shard here
    helper.stdin = None
    return helper


def _collect(helper: subprocess.Popen[bytes] | None, jobs: list[_Job], fmt: str) -> dict[PlotKey, str]:
    if helper is not None:
        out, err = helper.communicate()
        if helper.returncode == 0:
            try:
                return pickle.loads(out)
            except Exception as e:  # a broken answer: draw the shard here instead
                err = str(e).encode()
        last = (err.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        logger.warning(f"chaosagenkit report: a plot helper failed ({last}); drawing its plots here")
    return _draw(jobs, fmt)


def main() -> None:
    """Helper side: read (format, jobs) from stdin, write {key: data URI} to stdout."""
    fmt, jobs = pickle.load(sys.stdin.buffer)
    plots: dict[Any, str] = _draw(jobs, fmt)
    sys.stdout.buffer.write(pickle.dumps(plots))


if __name__ == "__main__":
    main()
