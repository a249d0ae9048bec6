"""The clustered interval's coverage on simulated benchmarks with a known truth (actionbench.results.stats_simulation).

Nominal 95 %: the "cluster" interval must cover the population mean in 93-97 % of simulated
benchmarks shaped like mini (8 actions x 23 subjects x 2 images, 1 and 3 training seeds), and
so must the paired interval of a difference. The image interval is shown to under-cover.
With 1000 benchmarks the Monte Carlo standard error of a coverage near 95 % is 0.7 points.
"""
import pytest

from actionbench.results.stats_simulation import (
    SETTINGS,
    Setting,
    coverage,
    paired_coverage,
    population_mean,
    population_mean_monte_carlo,
)

BAND = (0.93, 0.97)


def test_estimand_quadrature_agrees_with_monte_carlo():
    for setting in (SETTINGS["mini-like"], SETTINGS["mini-like, 3 seeds"], SETTINGS["high accuracy"]):
        assert population_mean(setting) == pytest.approx(population_mean_monte_carlo(setting, 400_000), abs=2e-3)
    assert population_mean(Setting(intercept=0.0)) == pytest.approx(0.5)  # symmetric around 0


def test_cluster_interval_neither_under_nor_over_covers_and_image_interval_under_covers():
    result = coverage(SETTINGS["mini-like"], n_benchmarks=1000, n_boot=400, seed=0, kinds=("cluster", "image"))
    cluster, image = result["kinds"]["cluster"], result["kinds"]["image"]
    print(f"\nmini-like, 1 seed: cluster {cluster['coverage']:.3f}, image {image['coverage']:.3f}")
    assert BAND[0] <= cluster["coverage"] <= BAND[1]
    assert image["coverage"] < 0.7  # images as independent: about 54 % here


def test_cluster_interval_keeps_its_coverage_with_three_training_seeds():
    result = coverage(SETTINGS["mini-like, 3 seeds"], n_benchmarks=1000, n_boot=400, seed=1, kinds=("cluster",))
    print(f"\nmini-like, 3 seeds: cluster {result['kinds']['cluster']['coverage']:.3f}")
    assert BAND[0] <= result["kinds"]["cluster"]["coverage"] <= BAND[1]


def test_paired_difference_interval_neither_under_nor_over_covers():
    result = paired_coverage(SETTINGS["mini-like"], n_benchmarks=1000, n_boot=400, seed=2, kinds=("cluster", "image"))
    cluster, image = result["kinds"]["cluster"], result["kinds"]["image"]
    print(f"\npaired difference: cluster {cluster['coverage']:.3f}, image {image['coverage']:.3f}")
    assert BAND[0] <= cluster["coverage"] <= BAND[1]
    assert image["coverage"] < 0.85
