"""Coverage of the 95 % intervals on simulated benchmarks with a known truth, over several settings.

Each setting of ``actionbench.results.stats_simulation.SETTINGS`` is a family of synthetic benchmarks
shaped like mini (8 actions x 23 subjects x 2 images, 1-3 training seeds) with Gaussian action,
subject, seed and action x subject effects on the logit scale. For each interval kind the table
gives the share of simulated benchmarks whose interval covers the population mean (nominal
95 %), the shares entirely below / above it, and the mean width (percentage points). The last
rows do the same for the paired difference between two methods. ``tests/test_stats_coverage.py``
asserts the 93-97 % band on two of these settings; this script is the full table quoted in
``docs/reading-the-leaderboard.md``.

    python benchmarks/interval_coverage.py [--benchmarks 2000] [--n-boot 400] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    from actionbench.results.stats_simulation import SETTINGS, coverage, paired_coverage

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=int, default=2000, help="simulated benchmarks per setting")
    parser.add_argument("--n-boot", type=int, default=400, help="bootstrap resamples per benchmark")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="cluster,cluster-percentile,image")
    args = parser.parse_args()
    kinds = tuple(args.kinds.split(","))

    print(f"{args.benchmarks} benchmarks per setting, {args.n_boot} resamples each, seed {args.seed}; "
          f"Monte Carlo s.e. of a 95 % coverage: {100 * (0.95 * 0.05 / args.benchmarks) ** 0.5:.1f} points")
    print(f"| setting | truth | {' | '.join(kinds)} |")
    print("|---|---|" + "---|" * len(kinds))
    runs = [(name, lambda s=setting: coverage(s, args.benchmarks, args.n_boot, args.seed, kinds))
            for name, setting in SETTINGS.items()]
    runs += [(f"paired A - B, {name}", lambda s=SETTINGS[name]: paired_coverage(
        s, n_benchmarks=args.benchmarks, n_boot=args.n_boot, seed=args.seed, kinds=kinds))
        for name in ("mini-like", "mini-like, 3 seeds", "subjects dominate")]
    for name, run in runs:
        started = time.perf_counter()
        result = run()
        cells = [f"{100 * k['coverage']:.1f} % ({100 * k['below']:.1f} / {100 * k['above']:.1f}; "
                 f"w {100 * k['mean_width']:.1f})" for k in result["kinds"].values()]
        seconds = time.perf_counter() - started
        print(f"| {name} | {100 * result['truth']:.1f} % | {' | '.join(cells)} |  ({seconds:.0f} s)", flush=True)
    print("cells: coverage (share entirely below / above the truth; mean width), all in percent")


if __name__ == "__main__":
    main()
