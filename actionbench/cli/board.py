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
@click.option("--allow-partial", is_flag=True, default=False,
              help="With --add: accept a run that is not a full, verifiable one (partial, smoke preset, your own "
                   "subjects or prompts, test backbone, legacy file); the board marks it, and partial, smoke or "
                   "custom-subject rows are not ranked.")
@click.option("--allow-dirty", is_flag=True, default=False,
              help="With --add: accept a run made from uncommitted code, or whose code changed during the run; "
                   "the board marks it.")
@click.option("--replace", is_flag=True, default=False,
              help="With --add: replace the entry of the same name (it is never replaced without this flag).")
@click.option("--name", "entry_name", default=None,
              help="With one --add: the entry's name [default: method-spec-judge-records hash].")
@friendly_errors
def leaderboard(runs, add, board_dir, allow_partial, allow_dirty, replace, entry_name):
    """Render LEADERBOARD.md, leaderboard.csv and index.html from all results (+ the paper's rows).

    \b
    actionbench leaderboard              re-render leaderboard/ (or --dir)
    actionbench leaderboard --add RUN    check RUN against its run folder, add it to leaderboard/ (or --dir)
                                         and re-render it
    actionbench leaderboard RUN...       a personal board: leaderboard/'s rows and yours, written to
                                         RUN/leaderboard/ (or --dir); the project's files stay untouched
    """
    from actionbench.leaderboard import PROJECT_BOARD, add_result, personal_board_dir, render_leaderboard

    if entry_name and len(add) != 1:
        raise click.UsageError("--name names one entry: give exactly one --add RUN with it")
    if runs and not add:
        page_dir = board_dir or personal_board_dir(runs)
        written = render_leaderboard(PROJECT_BOARD, extra_results=runs, page_dir=page_dir)
    else:
        board = board_dir or PROJECT_BOARD
        for item in add:
            path = add_result(item, board, name=entry_name, allow_partial=allow_partial, replace=replace,
                              allow_dirty=allow_dirty)
            click.echo(f"added {path}")
        written = render_leaderboard(board, extra_results=runs)
    for name, path in written.items():
        click.echo(f"{name}: {path}")


@click.command()
@click.argument("results", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Also check the results against this run folder: spec.json, the images' SHA-256, every "
                   "verdict against its judgment file, every metric re-derived from the judgment files.")
@friendly_errors
def validate(results, run_dir):
    """Check a results JSON: schema, finite numbers, hashes, metrics against the records, protocol coverage.

    \b
    actionbench validate RESULTS.json         the file on its own
    actionbench validate --run DIR            DIR/results.json against the run folder DIR
    actionbench validate RESULTS.json --run DIR
    """
    from actionbench.leaderboard import validate_results, validate_run
    from actionbench.run.runfolder import resolve_results_path

    if results is None and run_dir is None:
        raise click.UsageError("give a results file, or --run RUN_FOLDER")
    results = resolve_results_path(results if results is not None else run_dir)
    if run_dir is None:
        problems, notes = validate_results(results), []
    else:
        check = validate_run(results, run_dir)
        problems, notes = check.problems, check.notes
    missing = [] if run_dir is None else check.missing_evidence
    for note in notes:
        click.echo(f"note: {note}")
    if problems:
        for problem in problems:
            click.secho(f"- {problem}", fg="red", err=True)
        sys.exit(1)
    for line in missing:
        click.secho(f"missing evidence: {line}", fg="yellow")
    click.echo(f"{results}: valid" + (f" (checked against the run folder {run_dir})" if run_dir is not None else "")
               + ("; but its claim is not backed by its run folder, so `leaderboard --add` refuses it" if missing else ""))


commands = [leaderboard, validate]
