"""leaderboard and validate: the ranked table, and the checks a results file must pass to be on it."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from actionbench.errors import friendly_errors


@click.command()
@click.argument("runs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--add", "add", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Add a run folder or results.json to the board's results/ before rendering it.")
@click.option("--dir", "board_dir", type=click.Path(path_type=Path), default=None,
              help="The board to render or --add to [default: leaderboard]. With RUN... and no --add: where "
                   "your personal board goes [default: RUN/leaderboard].")
@friendly_errors
def leaderboard(runs, add, board_dir):
    """Render LEADERBOARD.md, leaderboard.csv and index.html from all results (+ the paper's rows).

    \b
    actionbench leaderboard              re-render leaderboard/ (or --dir)
    actionbench leaderboard --add RUN    add RUN to leaderboard/ (or --dir) and re-render it
    actionbench leaderboard RUN...       a personal board: leaderboard/'s rows and yours, written to
                                         RUN/leaderboard/ (or --dir); the project's files stay untouched
    """
    from actionbench.leaderboard import PROJECT_BOARD, add_result, personal_board_dir, render_leaderboard

    if runs and not add:
        page_dir = board_dir or personal_board_dir(runs)
        written = render_leaderboard(PROJECT_BOARD, extra_results=runs, page_dir=page_dir)
    else:
        board = board_dir or PROJECT_BOARD
        for item in add:
            click.echo(f"added {add_result(item, board)}")
        written = render_leaderboard(board, extra_results=runs)
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
