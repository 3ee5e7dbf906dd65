"""The one percentile every part of chaosagenkit uses: probes, reports and the host's stats.

Definition (numpy's default, Excel's PERCENTILE.INC, "linear" in
Hyndman & Fan's type 7): over ascending values x[0..n-1], the p-th
percentile is at rank r = (n - 1) * p / 100, interpolated linearly between
x[floor(r)] and x[ceil(r)]. p50 of [10, 20] is 15; p0 is the minimum and
p100 the maximum. A probe's p95 and the report's p95 of the same outcomes
are therefore the same number.
"""

from __future__ import annotations

import math

__all__ = ["percentile"]


def percentile(sorted_values: list[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of ascending ``sorted_values``, linearly interpolated.

    Raises ``ValueError`` for no values or ``p`` outside 0..100.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {p}")
    rank = (len(sorted_values) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction
