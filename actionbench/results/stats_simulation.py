"""Coverage of the benchmark's intervals, measured on synthetic benchmarks with a known truth.

A synthetic benchmark has the shape of ActionBench (8 actions x 23 subjects x 2 images, each
action customized with ``train_seeds`` training seeds) and a logistic random-effects model::

    P(image right) = expit(intercept + action + subject + seed + cell)
    action ~ N(0, sd_action^2)            one per action
    subject ~ N(0, sd_subject^2)          one per subject
    seed ~ N(0, sd_seed^2)                one per (action, training seed): one customization
    cell ~ N(0, sd_cell^2)                one per (action, subject): their interaction

and each image is right with that probability, independently given the effects.

**The estimand** is the population mean: the probability that an image is right when the
action, the subject and the training seed are new draws from the same distributions,
``E[expit(intercept + action + subject + seed + cell)]``. It is also the expected value of the
benchmark's mean over repeated benchmarks. The four effects add up to one Gaussian with
variance ``sd_action^2 + sd_subject^2 + sd_seed^2 + sd_cell^2``, so the estimand is a one-
dimensional integral: ``population_mean`` computes it by Gauss-Hermite quadrature and
``population_mean_monte_carlo`` by drawing effects (the tests check that they agree).

``coverage`` simulates benchmarks and counts how often each interval kind of
``actionbench.results.stats.estimate`` covers the estimand; ``paired_coverage`` does the same for the
difference between two methods that share the actions and subjects. Both are used by
``tests/test_stats_coverage.py`` (which asserts the 93-97 % band) and by
``benchmarks/interval_coverage.py`` (which prints a table over several settings).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .stats import Design, estimate


@dataclass(frozen=True)
class Setting:
    """One synthetic benchmark family (logit-scale standard deviations of the random effects)."""

    n_actions: int = 8
    n_subjects: int = 23
    images_per_cell: int = 2
    train_seeds: int = 1
    intercept: float = -1.6
    """Logit of a typical image's chance; -1.6 gives about 20 %, as ADI's total in mini."""
    sd_action: float = 1.0
    """Spread between actions; 1.0 matches mini's per-action totals (2 % to 46 %)."""
    sd_subject: float = 0.4
    sd_seed: float = 0.0
    """Spread between customizations of one action with different training seeds."""
    sd_cell: float = 0.3
    """Action x subject interaction."""

    @property
    def sd_total(self) -> float:
        return float(np.sqrt(self.sd_action**2 + self.sd_subject**2 + self.sd_seed**2 + self.sd_cell**2))


# Settings of the coverage table in docs/reading-the-leaderboard.md. "mini-like" is the test's.
SETTINGS = {
    "mini-like": Setting(),
    "mini-like, 3 seeds": Setting(train_seeds=3, sd_seed=0.5),
    "subjects dominate": Setting(intercept=-1.0, sd_action=0.3, sd_subject=1.0, sd_cell=0.2),
    "image noise dominates, 2 seeds": Setting(train_seeds=2, intercept=-0.5, sd_action=0.15, sd_subject=0.15,
                                              sd_seed=0.15, sd_cell=0.0),
    "seeds dominate, 3 seeds": Setting(train_seeds=3, intercept=-1.0, sd_action=0.5, sd_subject=0.3, sd_seed=1.0,
                                       sd_cell=0.0),
    "high accuracy": Setting(intercept=2.5, sd_action=0.7, sd_subject=0.7),
    "small effects": Setting(sd_action=0.5, sd_subject=0.3, sd_cell=0.2),
}


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def population_mean(setting: Setting) -> float:
    """The estimand ``E[expit(intercept + sd_total Z)]``, Z standard normal, by Gauss-Hermite quadrature."""
    return _logit_normal_mean(setting.intercept, setting.sd_total)


def _logit_normal_mean(centre: float, sd: float, nodes: int = 80) -> float:
    z, w = np.polynomial.hermite_e.hermegauss(nodes)  # probabilists' Hermite: weight exp(-z^2 / 2)
    return float((w * _expit(centre + sd * z)).sum() / w.sum())


def population_mean_monte_carlo(setting: Setting, n_draws: int = 1_000_000, seed: int = 0) -> float:
    """The estimand by drawing the four effects anew ``n_draws`` times (a check of ``population_mean``)."""
    rng = np.random.default_rng(seed)
    logit = setting.intercept + sum(rng.normal(0.0, sd, n_draws) for sd in
                                    (setting.sd_action, setting.sd_subject, setting.sd_seed, setting.sd_cell))
    return float(_expit(logit).mean())


def design_of(setting: Setting) -> Design:
    """The images of one synthetic benchmark, action-major: (action, seed, subject, image)."""
    grid = np.meshgrid(np.arange(setting.n_actions), np.arange(setting.train_seeds), np.arange(setting.n_subjects),
                       np.arange(setting.images_per_cell), indexing="ij")
    action, seed, subject = (g.ravel() for g in grid[:3])
    return Design.of([f"action{a}" for a in action], [f"subject{s}" for s in subject], [str(t) for t in seed])


def _logits(setting: Setting, rng: np.random.Generator, shared: dict | None = None) -> np.ndarray:
    """``(A, T, S, 1)`` logits of one benchmark; ``shared`` effects (``action``, ``subject``, ``cell``) are reused."""
    shared = shared or {}
    a, s, t = setting.n_actions, setting.n_subjects, setting.train_seeds
    action = shared.get("action", rng.normal(0.0, setting.sd_action, a))
    subject = shared.get("subject", rng.normal(0.0, setting.sd_subject, s))
    cell = shared.get("cell", rng.normal(0.0, setting.sd_cell, (a, s)))
    seed = rng.normal(0.0, setting.sd_seed, (a, t))
    return (setting.intercept + action[:, None, None, None] + seed[:, :, None, None]
            + subject[None, None, :, None] + cell[:, None, :, None])


def simulate_benchmark(setting: Setting, rng: np.random.Generator) -> np.ndarray:
    """One benchmark's per-image 0/1 outcomes, in ``design_of(setting)``'s order."""
    logits = _logits(setting, rng)
    shape = logits.shape[:3] + (setting.images_per_cell,)
    return (rng.random(shape) < _expit(logits)).astype(np.float64).ravel()


def _tally(hits: dict, kind: str, low: float, high: float, truth: float) -> None:
    tally = hits.setdefault(kind, {"covered": 0, "below": 0, "above": 0, "width": 0.0, "n": 0})
    tally["covered"] += int(low <= truth <= high)
    tally["below"] += int(high < truth)  # the whole interval below the truth
    tally["above"] += int(low > truth)
    tally["width"] += high - low
    tally["n"] += 1


def _summary(hits: dict, truth: float, setting: Setting, n_benchmarks: int, n_boot: int, seed: int) -> dict:
    kinds = {kind: {"coverage": t["covered"] / t["n"], "below": t["below"] / t["n"], "above": t["above"] / t["n"],
                    "mean_width": t["width"] / t["n"]} for kind, t in hits.items()}
    return {"truth": truth, "setting": asdict(setting), "n_benchmarks": n_benchmarks, "n_boot": n_boot,
            "seed": seed, "kinds": kinds}


def coverage(setting: Setting = Setting(), n_benchmarks: int = 500, n_boot: int = 400, seed: int = 0,
             kinds: tuple[str, ...] = ("cluster", "image")) -> dict:
    """How often each interval kind covers the population mean, over ``n_benchmarks`` simulated benchmarks.

    Returns ``{"truth", "setting", "n_benchmarks", "n_boot", "seed", "kinds": {kind: {"coverage",
    "below", "above", "mean_width"}}}``; ``below`` is the share of intervals entirely below the truth.
    Deterministic for a fixed ``seed``.
    """
    truth = population_mean(setting)
    design = design_of(setting)
    rng = np.random.default_rng(seed)
    hits: dict = {}
    for _ in range(n_benchmarks):
        values = simulate_benchmark(setting, rng)[None, :]
        boot_seed = int(rng.integers(2**31))
        for kind in kinds:
            result = estimate(values, design, kind, n_boot, boot_seed, bounded=[True])
            _tally(hits, kind, float(result.low[0]), float(result.high[0]), truth)
    return _summary(hits, truth, setting, n_benchmarks, n_boot, seed)


def paired_coverage(setting: Setting = Setting(), difference: float = -0.2, sd_method_action: float = 0.5,
                    n_benchmarks: int = 500, n_boot: int = 400, seed: int = 0,
                    kinds: tuple[str, ...] = ("cluster", "image")) -> dict:
    """Coverage of the paired difference A - B of two methods on the same actions and subjects.

    Method B has ``intercept + difference`` and each method has its own action deviation
    (``N(0, sd_method_action^2)``, method x action) and its own training seeds; the action,
    subject and cell effects are shared. The truth is the difference of the two population means.
    """
    spread = float(np.hypot(setting.sd_total, sd_method_action))
    truth = _logit_normal_mean(setting.intercept, spread) - _logit_normal_mean(setting.intercept + difference, spread)
    design = design_of(setting)
    rng = np.random.default_rng(seed)
    hits: dict = {}
    a, s = setting.n_actions, setting.n_subjects
    for _ in range(n_benchmarks):
        shared = {"action": rng.normal(0.0, setting.sd_action, a), "subject": rng.normal(0.0, setting.sd_subject, s),
                  "cell": rng.normal(0.0, setting.sd_cell, (a, s))}
        outcomes = []
        for shift in (0.0, difference):
            deviation = rng.normal(0.0, sd_method_action, a)
            logits = _logits(setting, rng, {**shared, "action": shared["action"] + deviation}) + shift
            shape = logits.shape[:3] + (setting.images_per_cell,)
            outcomes.append((rng.random(shape) < _expit(logits)).astype(np.float64).ravel())
        values = (outcomes[0] - outcomes[1])[None, :]
        boot_seed = int(rng.integers(2**31))
        for kind in kinds:
            result = estimate(values, design, kind, n_boot, boot_seed, bounded=[False])
            _tally(hits, kind, float(result.low[0]), float(result.high[0]), truth)
    return _summary(hits, truth, setting, n_benchmarks, n_boot, seed)
