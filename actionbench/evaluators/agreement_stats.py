"""Agreement statistics and their 95 % intervals: Cohen's and Fleiss' kappa, Krippendorff's alpha, Wilson.

* ``cohen_kappa``: two raters on the same items, any categories.
* ``fleiss_kappa``: an items x categories table of rating counts; rows may have different totals.
* ``krippendorff_alpha``: nominal alpha from a raters x items table with missing ratings, by the
  ``krippendorff`` package (Castro 2017), which follows Krippendorff (2011), "Computing
  Krippendorff's alpha-reliability".
* Intervals. A proportion (a judge's accuracy against the human majority: one trial per image)
  gets the Wilson score interval (``scipy.stats.binomtest``). A kappa or an alpha gets a
  percentile bootstrap over images: an image is drawn with all of its ratings, so the ratings of
  one image, which are not independent, stay together (``cluster_weights``). ``N_BOOT`` resamples
  from ``numpy.random.default_rng(SEED)``, so the same labels always give the same interval.

A statistic is ``None`` where it is undefined (every label the same: chance agreement is 1). The
resamples in which it is undefined are left out of its interval; the interval is ``None`` with fewer
than two images, or when more than half the resamples leave the statistic undefined.
"""
from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence

import numpy as np

N_BOOT = 1000
SEED = 0
LEVEL = 0.95
INTERVALS = {
    "accuracy": "Wilson score interval (each image one trial against the human majority)",
    "kappa_alpha": (f"percentile bootstrap over images (an image is drawn with all its ratings), {N_BOOT} "
                    f"resamples, numpy default_rng({SEED})"),
}


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items (any categories)."""
    if len(a) != len(b):
        raise ValueError(f"two raters need the same number of labels, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from an items x categories table of rating counts.

    Rows may have different totals (raters per item), each at least 2: each item's agreement is
    ``(sum_j n_ij^2 - n_i) / (n_i (n_i - 1))`` and the category shares pool every rating; with the
    same number of raters on every item it is exactly Fleiss (1971).
    """
    rows = [list(map(int, r)) for r in counts]
    if not rows:
        return None
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError("every row of the count table needs the same number of categories")
    if any(sum(r) < 2 for r in rows):
        raise ValueError("Fleiss' kappa needs at least two ratings per item")
    value = _fleiss(np.asarray(rows, dtype=np.float64), np.ones((1, len(rows))))[0]
    return None if np.isnan(value) else float(value)


def _fleiss(table: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fleiss' kappa of ``table`` (items x categories) under each row of ``weights`` (resamples x items)."""
    totals = table.sum(axis=1)
    per_item = ((table * table).sum(axis=1) - totals) / (totals * (totals - 1))
    drawn = weights.sum(axis=1)
    observed = weights @ per_item / drawn
    shares = (weights @ table) / (weights @ totals)[:, None]
    expected = (shares * shares).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected < 1.0 - 1e-12, (observed - expected) / (1.0 - expected), np.nan)


def krippendorff_alpha(ratings: Sequence[Sequence[float]]) -> float | None:
    """Nominal Krippendorff's alpha of a raters x items table (``nan`` where a rater gave no label).

    Items with fewer than two ratings cannot be paired and do not count. Labels are numbers
    (code categories as 0, 1, ...).
    """
    import krippendorff

    data = np.asarray(ratings, dtype=np.float64)
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    values = np.unique(data[:, pairable][~np.isnan(data[:, pairable])])
    if values.size < 2:  # one value only: expected disagreement is 0, alpha undefined
        return None
    return float(krippendorff.alpha(reliability_data=data[:, pairable], level_of_measurement="nominal",
                                    value_domain=list(values)))


def wilson(k: int, n: int) -> list[float] | None:
    """The 95 % Wilson score interval of ``k`` successes in ``n`` trials (None when ``n`` is 0)."""
    if n == 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=LEVEL, method="wilson")
    return [float(ci.low), float(ci.high)]


def cluster_weights(clusters: Sequence[Hashable], n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """``(n_boot, rows)``: how often each row is drawn when whole clusters (images) are resampled."""
    from actionbench.results.stats import _draw

    codes = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)[1].reshape(-1)
    return _draw(int(codes.max()) + 1 if codes.size else 0, n_boot, np.random.default_rng(seed))[:, codes]


def percentile_ci(replicates: Sequence[float]) -> list[float] | None:
    """2.5 and 97.5 percentiles of the bootstrap replicates where the statistic is defined; None when it is
    undefined in more than half of them (a resample of images that all got the same label)."""
    values = np.asarray(replicates, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if values.size == 0 or finite.size < 0.5 * values.size:
        return None
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return [float(low), float(high)]


def binary_kappa_ci(a: Sequence[bool], b: Sequence[bool], clusters: Sequence[Hashable]) -> list[float] | None:
    """Bootstrap interval of Cohen's kappa of two yes/no raters, resampling ``clusters`` (images)."""
    if len(set(map(str, clusters))) < 2:
        return None
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    weights = cluster_weights(clusters)
    drawn = weights.sum(axis=1)
    observed = weights @ (x == y) / drawn
    px, py = weights @ x / drawn, weights @ y / drawn
    expected = px * py + (1 - px) * (1 - py)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(expected < 1.0 - 1e-12, (observed - expected) / (1.0 - expected), np.nan)
    return percentile_ci(kappa)


def fleiss_kappa_ci(counts: Sequence[Sequence[int]]) -> list[float] | None:
    """Bootstrap interval of ``fleiss_kappa`` over its items (each row one image)."""
    table = np.asarray(counts, dtype=np.float64)
    if len(table) < 2:
        return None
    return percentile_ci(_fleiss(table, cluster_weights(range(len(table)))))


def krippendorff_alpha_ci(ratings: Sequence[Sequence[float]]) -> list[float] | None:
    """Bootstrap interval of ``krippendorff_alpha`` over its items (columns)."""
    data = np.asarray(ratings, dtype=np.float64)
    data = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    if data.shape[1] < 2:
        return None
    weights = cluster_weights(range(data.shape[1])).astype(np.int64)
    replicates = []
    for row in weights:
        value = krippendorff_alpha(np.repeat(data, row, axis=1))
        replicates.append(np.nan if value is None else value)
    return percentile_ci(replicates)
