"""Ranks with ties: a row's rank is a range where the paired comparison cannot separate it from others.

Within one ranking group (dataset, backbone, judge name, version and model) every pair of ranked
rows is compared with ``actionbench.results.compare.compare_results`` on total accuracy: the paired
difference with its two-way clustered 95 % interval (actions with their training seeds, and
subjects, resampled once for both rows). Row ``i``'s rank range is

    [1 + rows significantly above i,  N - rows significantly below i]

where "significantly" means the interval of the difference excludes 0 and N is the number of
ranked rows in the group. A row better than every other one gets "1"; a row that cannot be told
from its neighbours gets, say, "2-4". The paper's reported rows carry no records, so they get a
plain rank and no range; rows that cannot be compared (another manifest or protocol) count as
not separable, which widens ranges rather than claiming a difference.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

N_BOOT = 1000  # resamples per pairwise comparison; the cluster interval is a t interval, so this is plenty
SEED = 0  # fixed, so a board renders the same every time
METRIC = "total"


def separations(results: Sequence[Mapping], n_boot: int = N_BOOT, seed: int = SEED) -> list[list[int]]:
    """``sign[i][j]``: +1 when row i is significantly above row j on total, -1 below, 0 not separable."""
    from actionbench.results.compare import IncomparableRunsError, compare_results

    n = len(results)
    sign = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            try:
                low, high = compare_results(results[i], results[j], n_boot=n_boot, seed=seed)["metrics"][METRIC]["ci95"]
            except (IncomparableRunsError, ValueError):
                continue
            if low > 0:
                sign[i][j], sign[j][i] = 1, -1
            elif high < 0:
                sign[i][j], sign[j][i] = -1, 1
    return sign


def rank_ranges(results: Sequence[Mapping], n_boot: int = N_BOOT, seed: int = SEED) -> list[tuple[int, int]]:
    """``(best, worst)`` rank of each of the rows of one group, from the pairwise comparisons."""
    sign = separations(results, n_boot, seed)
    n = len(results)
    return [(1 + sum(s == -1 for s in row), n - sum(s == 1 for s in row)) for row in sign]


def range_text(best: int, worst: int) -> str:
    """``"3"`` or ``"2-4"``."""
    return str(best) if best == worst else f"{best}-{worst}"
