"""Intervals for per-image benchmark metrics when images are not independent draws.

The images of one action come from one customization (one per training seed), and every
method shares the same subjects. A benchmark number should generalise to *new actions, new
subjects and new training seeds* drawn like these, so the resampling units are actions (with
their training seeds) and subjects, not images. Three interval kinds:

``"cluster"`` (the default): a two-way cluster-robust variance, estimated by bootstrap,
    ``V = V_action + V_subject - V_action x subject`` (Cameron, Gelbach & Miller 2011, "Robust
    inference with multiway clustering", JBES 29(2); the additive form of Owen 2007, "The
    pigeonhole bootstrap", Ann. Appl. Stat. 1(2)). Each one-way term is the variance of the
    mean when only that factor's clusters are resampled with replacement (an action keeps all
    its images, training seeds included; an action x subject cell keeps all its images), times
    ``G / (G - 1)``. The interval is a Student-t interval with ``min(A, S) - 1`` degrees of
    freedom (the few-clusters rule of the same authors); for a metric in [0, 1] it is built on the
    logit scale (delta method) and mapped back, so it stays inside [0, 1] and follows the skew of
    small proportions. The p-value (of "the mean is 0", used for paired differences) is the same
    t test, so p < 0.05 exactly when the 95 % interval excludes 0.
``"cluster-percentile"``: the plain two-way ("resample both factors", pigeonhole) bootstrap:
    draw ``A`` actions and ``S`` subjects with replacement, inside each drawn copy of an action
    draw its training seeds with replacement, take every image of the crossed cells; 2.5 and 97.5
    percentiles of the replicate means. Kept for comparison only (see below).
``"image"``: the percentile bootstrap over images as if independent (the interval results files carried before the clustered one).

Why not the percentile interval of the two-way bootstrap: ``actionbench.results.stats_simulation``
measures coverage on synthetic benchmarks with known action, subject and seed effects. With
8 actions it under-covers when actions dominate (92 %: the bootstrap variance of a mean
of ``A`` clusters is ``(A - 1) / A`` of the unbiased one, and the normal quantile ignores that the
variance is estimated from 8 values), over-covers when image noise dominates (99.6 %: resampling
both factors counts the image-level noise about three times), and resampling seeds inside
actions counts the seed variance twice (Davison & Hinkley 1997, section 3.8). The corrected
variance with a t quantile lands within 94 to 97 % in every setting tried; the numbers are in
``docs/reading-the-leaderboard.md``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

NO_SEED = ""  # the training seed of records that do not name one (one customization per action)
INTERVAL_KINDS = ("cluster", "cluster-percentile", "image")
LEVEL = 0.95


@dataclass(frozen=True)
class Design:
    """Where each image sits: its action, subject and training seed, as indices.

    ``seed[i]`` indexes ``seeds[action[i]]``, the training seeds seen for that action (first
    appearance order); records without a training seed all share one, ``NO_SEED``.
    """

    action: np.ndarray
    subject: np.ndarray
    seed: np.ndarray
    actions: tuple[str, ...]
    subjects: tuple[str, ...]
    seeds: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, action_ids: Sequence[str], subject_ids: Sequence[str],
           train_seeds: Sequence[str] | None = None) -> Design:
        """The design of images given their action, subject and (optionally) training seed labels."""
        actions = tuple(dict.fromkeys(action_ids))
        subjects = tuple(dict.fromkeys(subject_ids))
        action_index = {a: i for i, a in enumerate(actions)}
        subject_index = {s: i for i, s in enumerate(subjects)}
        train_seeds = [NO_SEED] * len(action_ids) if train_seeds is None else list(train_seeds)
        seen: list[dict[str, int]] = [{} for _ in actions]
        seed = [seen[action_index[a]].setdefault(t, len(seen[action_index[a]]))
                for a, t in zip(action_ids, train_seeds)]
        return cls(
            action=np.asarray([action_index[a] for a in action_ids], dtype=np.int64),
            subject=np.asarray([subject_index[s] for s in subject_ids], dtype=np.int64),
            seed=np.asarray(seed, dtype=np.int64),
            actions=actions, subjects=subjects, seeds=tuple(tuple(s) for s in seen),
        )

    @property
    def n_seeds(self) -> np.ndarray:
        """Training seeds per action, shape ``(A,)``."""
        return np.asarray([len(s) for s in self.seeds], dtype=np.int64)

    def cell_totals(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sums of ``values`` (``(M, n)``) and image counts per (action, seed, subject) cell.

        Returns ``(sums (M, A, T, S), counts (A, T, S))``, ``T`` the largest seed count of an action.
        """
        shape = (len(self.actions), int(self.n_seeds.max()), len(self.subjects))
        flat = np.ravel_multi_index((self.action, self.seed, self.subject), shape)
        size = int(np.prod(shape))
        sums = np.stack([np.bincount(flat, weights=v, minlength=size) for v in values])
        counts = np.bincount(flat, minlength=size).astype(np.float64)
        return sums.reshape(len(values), *shape), counts.reshape(shape)


@dataclass
class Estimate:
    """Means and 95 % intervals of ``M`` per-image metrics, and how the intervals were made."""

    mean: np.ndarray  # (M,)
    low: np.ndarray  # (M,)
    high: np.ndarray  # (M,)
    p_value: np.ndarray  # (M,) two-sided, of "the population mean is 0" (meaningful for differences)
    interval: dict = field(default_factory=dict)  # kind, n_boot, seed, method, df, ...


def _ratio_replicates(weights: np.ndarray, totals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Replicate means ``(M, n_boot)``: sum(weight x total) / sum(weight x count) over clusters.

    ``weights`` ``(n_boot, G)``: times each of ``G`` clusters is drawn; ``totals`` ``(M, G)``;
    ``counts`` ``(G,)`` images per cluster. A replicate that draws no image is NaN.
    """
    numerator = totals @ weights.T
    denominator = weights @ counts
    with np.errstate(invalid="ignore", divide="ignore"):
        return numerator / np.where(denominator > 0, denominator, np.nan)[None, :]


def _draw(n_clusters: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, G)`` counts of a with-replacement draw of ``G`` clusters out of ``G``."""
    drawn = rng.integers(0, n_clusters, size=(n_boot, n_clusters))  # several times faster than rng.multinomial
    drawn += n_clusters * np.arange(n_boot)[:, None]
    return np.bincount(drawn.ravel(), minlength=n_boot * n_clusters).reshape(n_boot, n_clusters).astype(np.float64)


def _one_way_variance(totals: np.ndarray, counts: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap variance of the mean when these clusters are resampled, times ``G / (G - 1)``."""
    keep = counts > 0
    totals, counts = totals[:, keep], counts[keep]
    n_clusters = len(counts)
    if n_clusters < 2:  # one cluster: its variation cannot be estimated (the caller warns)
        return np.zeros(len(totals))
    replicates = _ratio_replicates(_draw(n_clusters, n_boot, rng), totals, counts)
    return np.nanvar(replicates, axis=1) * n_clusters / (n_clusters - 1)


def _t_quantile(df: float) -> float:
    from scipy.special import (
        stdtrit,  # scipy.special, not scipy.stats: a third of the import time
    )

    return float(stdtrit(df, 0.5 + LEVEL / 2))


def _t_p_value(statistic: np.ndarray, df: float) -> np.ndarray:
    from scipy.special import stdtr

    return 2.0 * stdtr(df, -np.abs(statistic))


def cluster_estimate(values: np.ndarray, design: Design, n_boot: int, seed: int,
                     bounded: Sequence[bool]) -> Estimate:
    """The ``"cluster"`` interval (see the module docstring) of each row of ``values`` ``(M, n)``.

    ``bounded[m]`` says metric ``m`` lies in [0, 1] (its interval is built on the logit scale).
    Draw order, for reproducibility: action clusters, subject clusters, action x subject cells.
    """
    rng = np.random.default_rng(seed)
    sums, counts = design.cell_totals(values)  # (M, A, T, S), (A, T, S)
    mean = sums.sum(axis=(1, 2, 3)) / counts.sum()
    n_actions, n_subjects = len(design.actions), len(design.subjects)
    v_action = _one_way_variance(sums.sum(axis=(2, 3)), counts.sum(axis=(1, 2)), n_boot, rng)
    v_subject = _one_way_variance(sums.sum(axis=(1, 2)), counts.sum(axis=(0, 1)), n_boot, rng)
    cells = sums.sum(axis=2).reshape(len(values), -1)
    v_cell = _one_way_variance(cells, counts.sum(axis=1).reshape(-1), n_boot, rng)
    variance = v_action + v_subject - v_cell
    # The difference can come out negative by chance; Cameron, Gelbach & Miller then keep the larger one-way term.
    variance = np.where(variance > 0, variance, np.maximum(v_action, v_subject))
    se = np.sqrt(variance)
    df = max(min(n_actions, n_subjects) - 1, 1)
    half = _t_quantile(df) * se
    low, high = mean - half, mean + half
    for m, is_bounded in enumerate(bounded):
        if is_bounded and 0.0 < mean[m] < 1.0:  # logit scale: delta-method SE, then back to [0, 1]
            centre, half_logit = np.log(mean[m] / (1 - mean[m])), half[m] / (mean[m] * (1 - mean[m]))
            low[m], high[m] = 1 / (1 + np.exp(-(centre - half_logit))), 1 / (1 + np.exp(-(centre + half_logit)))
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = np.where(se > 0, _t_p_value(mean / np.where(se > 0, se, 1.0), df), np.where(mean == 0, 1.0, 0.0))
    interval = {
        "kind": cluster_kind("cluster", design), "n_boot": int(n_boot), "seed": int(seed),
        "method": (f"two-way cluster-robust variance V(action) + V(subject) - V(action x subject), each by "
                   f"bootstrap; t with {df} df" + ("; logit scale for metrics in [0, 1]" if any(bounded) else "")),
        "df": df, **design_counts(design),
    }
    return Estimate(mean, low, high, p_value, interval)


def pigeonhole_replicates(values: np.ndarray, design: Design, n_boot: int,
                          rng: np.random.Generator) -> np.ndarray:
    """``(M, n_boot)`` replicate means of the two-way bootstrap with seeds resampled inside actions.

    A drawn action appearing ``c`` times with ``T`` seeds makes ``c`` independent seed draws,
    whose counts add up to one ``Multinomial(c T, 1/T)``. Draw order: actions, seeds, subjects.
    """
    sums, counts = design.cell_totals(values)
    n_seeds, width = design.n_seeds, sums.shape[2]
    action_counts = _draw(len(n_seeds), n_boot, rng).astype(np.int64)
    if width == 1:  # one customization per action: the seed is the action
        seed_counts = action_counts[:, :, None].astype(np.float64)
    else:
        pvals = (np.arange(width)[None, :] < n_seeds[:, None]) / n_seeds[:, None]  # uniform over the seen seeds
        seed_counts = rng.multinomial(action_counts * n_seeds[None, :], pvals).astype(np.float64)
    subject_counts = _draw(len(design.subjects), n_boot, rng)
    numerator = np.einsum("bat,mats,bs->mb", seed_counts, sums, subject_counts, optimize=True)
    denominator = np.einsum("bat,ats,bs->b", seed_counts, counts, subject_counts, optimize=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return numerator / np.where(denominator > 0, denominator, np.nan)[None, :]


def _percentile_interval(replicates: np.ndarray) -> tuple[np.ndarray, ...]:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.nanpercentile(replicates, [tail, 100 - tail], axis=1)
    # Two-sided bootstrap p-value: twice the share of replicates on the far side of 0 (capped at 1).
    below, above = np.nanmean(replicates <= 0, axis=1), np.nanmean(replicates >= 0, axis=1)
    p_value = np.minimum(1.0, 2 * np.minimum(below, above))
    return low, high, p_value


def percentile_estimate(values: np.ndarray, design: Design, n_boot: int, seed: int, kind: str) -> Estimate:
    """``"image"`` or ``"cluster-percentile"`` intervals: percentiles of bootstrap replicate means.

    ``"image"`` draws ``rng.integers(0, n, (n_boot, n))`` exactly as ``compute_metrics`` did before
    intervals were clustered, so results files written then recompute to the same numbers.
    """
    mean = values.mean(axis=1)
    if n_boot == 0:
        return Estimate(mean, mean.copy(), mean.copy(), np.full(len(mean), np.nan),
                        {"kind": cluster_kind(kind, design), "n_boot": 0, "seed": int(seed),
                         "method": "none (n_boot=0)"})
    rng = np.random.default_rng(seed)
    if kind == "image":
        index = rng.integers(0, values.shape[1], size=(n_boot, values.shape[1]))
        replicates = values[:, index].mean(axis=2)
        method = "percentile bootstrap over images, as if independent"
    else:
        replicates = pigeonhole_replicates(values, design, n_boot, rng)
        method = "percentile two-way bootstrap: actions (seeds resampled inside), subjects"
    low, high, p_value = _percentile_interval(replicates)
    interval = {"kind": cluster_kind(kind, design), "n_boot": int(n_boot), "seed": int(seed), "method": method}
    if kind != "image":
        interval.update(design_counts(design))
    return Estimate(mean, low, high, p_value, interval)


def cluster_kind(kind: str, design: Design) -> str:
    """The label of an interval kind, naming its resampling units (``cluster(action,subject,train_seed)``)."""
    if kind == "image":
        return "image"
    units = "action,subject,train_seed" if len(design.actions) and design.n_seeds.max() > 1 else "action,subject"
    return f"{kind}({units})"


def base_kind(label: str) -> str:
    """``"cluster(action,subject)"`` -> ``"cluster"``: the interval kind of a stored label."""
    return label.split("(", 1)[0]


def design_counts(design: Design) -> dict:
    counts = {"n_actions": len(design.actions), "n_subjects": len(design.subjects)}
    if len(design.actions):
        counts["train_seeds_per_action"] = [int(design.n_seeds.min()), int(design.n_seeds.max())]
    if len(design.actions) < 2 or len(design.subjects) < 2:
        counts["warning"] = ("fewer than 2 actions or subjects: the interval cannot include the variation "
                             "between them; do not read it as covering new actions or subjects")
    return counts


def check_interval(kind: str, n_boot: int) -> None:
    """Raise ``ConfigError`` for an unknown interval kind or a negative ``n_boot``."""
    if kind not in INTERVAL_KINDS:
        raise ConfigError(f"interval kind {kind!r} is unknown; choose one of {', '.join(INTERVAL_KINDS)}")
    if n_boot < 0:
        raise ConfigError(f"n_boot must be >= 0, got {n_boot}")


def estimate(values: np.ndarray, design: Design, kind: str = "cluster", n_boot: int = 1000, seed: int = 0,
             bounded: Sequence[bool] | None = None) -> Estimate:
    """Means, 95 % intervals and p-values (of mean 0) of per-image metrics ``values`` ``(M, n)``.

    Args:
        values: one row per metric, one column per image (0/1 judgments or real numbers).
        design: each image's action, subject and training seed (``Design.of``).
        kind: ``"cluster"`` (default), ``"cluster-percentile"`` or ``"image"`` (module docstring).
        n_boot: bootstrap resamples (0: intervals equal to the mean).
        seed: seed of ``numpy.random.default_rng``; same inputs and seed give the same numbers.
        bounded: per metric, whether it lies in [0, 1] (default: whether its values do).

    Raises:
        ConfigError: an unknown kind or a negative ``n_boot``.
    """
    check_interval(kind, n_boot)
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if bounded is None:
        bounded = [bool(np.all((row >= 0) & (row <= 1))) for row in values]
    if kind == "cluster" and n_boot > 0:
        return cluster_estimate(values, design, n_boot, seed, bounded)
    return percentile_estimate(values, design, n_boot, seed, kind)
