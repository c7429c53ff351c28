"""Statistics a reviewer accepts for repeated runs: mean, standard deviation and a 95 % t-interval, and the
paired difference of two configurations over the seeds (hence splits) they share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class Summary:
    """n values: their mean, sample standard deviation and the 95 % confidence interval of the mean
    (Student's t; sd and interval are nan for a single value)."""

    n: int
    mean: float
    sd: float
    low: float
    high: float

    def format(self, scale: float = 100.0, digits: int = 1) -> str:
        """`mean ± sd [low, high] (n)` in percent by default."""
        if self.n == 1:
            return f"{self.mean * scale:.{digits}f} (n=1)"
        return (
            f"{self.mean * scale:.{digits}f} ± {self.sd * scale:.{digits}f} "
            f"[{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}] (n={self.n})"
        )


def percent_cell(summary: Summary, signed: bool = False) -> str:
    """A table cell in percent: `mean [low, high]`, or the mean alone for one value (`signed`: with a + sign)."""
    sign = "+" if signed else ""
    if summary.n == 1 or summary.sd != summary.sd:
        return f"{100 * summary.mean:{sign}.1f}"
    return f"{100 * summary.mean:{sign}.1f} [{100 * summary.low:{sign}.1f}, {100 * summary.high:{sign}.1f}]"


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    from scipy import stats

    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = sum(values) / n
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def paired_difference(a: Mapping[Any, float], b: Mapping[Any, float], confidence: float = 0.95) -> Summary | None:
    """Summary of `a[k] - b[k]` over the keys (seeds) both have; None when they share none."""
    shared = sorted(set(a) & set(b), key=str)
    if not shared:
        return None
    return summarize([a[k] - b[k] for k in shared], confidence)


def best_epoch(history: list[dict[str, float]], metric: str, mode: str) -> int | None:
    """The epoch with the best value of `metric` in per-epoch rows (`mode` min or max: the first such epoch, as
    Lightning's checkpointing keeps it); None if the metric was never logged."""
    rows = [row for row in history if metric in row and row[metric] == row[metric]]  # NaN is never the best
    if not rows:
        return None
    pick = min if mode == "min" else max
    return int(pick(rows, key=lambda row: row[metric])["epoch"])
