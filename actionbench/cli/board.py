"""leaderboard and validate: the ranked table, and the checks a results file must pass to be on it."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from actionbench.errors import friendly_errors


@click.command()
@click.argument("runs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--add", "add", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Add a run folder or results.json to leaderboard/results before rendering.")
@click.option("--dir", "board_dir", type=click.Path(path_type=Path), default=Path("leaderboard"), show_default=True)
@friendly_errors
def leaderboard(runs, add, board_dir):
    """Render leaderboard/LEADERBOARD.md, leaderboard.csv and index.html from all results (+ the paper's rows)."""
    from actionbench.leaderboard import add_result, render_leaderboard

    for item in add:
        path = item / "results.json" if item.is_dir() else item
        click.echo(f"added {add_result(path, board_dir)}")
    extra = [r / "results.json" if r.is_dir() else r for r in runs]
    written = render_leaderboard(board_dir, extra_results=extra)
    for name, path in written.items():
        click.echo(f"{name}: {path}")


@click.command()
@click.argument("results", type=click.Path(exists=True, path_type=Path))
@friendly_errors
def validate(results):
    """Check a results JSON's schema, metrics and provenance (for leaderboard entries)."""
    from actionbench.leaderboard import validate_results

    problems = validate_results(results)
    if problems:
        for problem in problems:
            click.secho(f"- {problem}", fg="red", err=True)
        sys.exit(1)
    click.echo(f"{results}: valid")


commands = [leaderboard, validate]
