"""compare: paired differences between runs on the same benchmark, with clustered intervals and p-values."""
from __future__ import annotations

import json
from pathlib import Path

import click

from actionbench.errors import friendly_errors


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--interval", "interval", type=click.Choice(["cluster", "cluster-percentile", "image"]),
              default="cluster", show_default=True,
              help="cluster: actions (with their training seeds) and subjects are the units; "
                   "image: as if images were independent.")
@click.option("--n-boot", type=click.IntRange(min=1), default=2000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the resampling.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparisons as JSON.")
@friendly_errors
def compare(runs, interval, n_boot, seed, as_json):
    """Compare RUN_A with RUN_B [RUN_C ...] (run folders or results.json): A - B for each later run.

    Images are paired by unit (and training seed); the interval resamples actions and subjects
    once for both runs. Runs with another dataset, protocol or judge are refused.
    """
    from actionbench.results.compare import compare_runs, format_comparisons

    comparisons = compare_runs(runs, n_boot=n_boot, seed=seed, interval=interval)
    click.echo(json.dumps(comparisons, indent=2) if as_json else format_comparisons(comparisons))


commands = [compare]
