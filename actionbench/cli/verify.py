"""rejudge and reproduce: checking a leaderboard entry by re-judging its images, or by re-running its spec."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from actionbench.devices import check_device
from actionbench.errors import friendly_errors

from .options import default_device, judge_option, judge_options_from


def _entry(item: Path, board: Path):
    from actionbench.leaderboard import load_valid_results, resolve_entry

    path, name = resolve_entry(item, board)
    return path, name, load_valid_results(path)


@click.command()
@click.argument("entry", metavar="RUN_DIR_OR_ENTRY")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="A new folder for the re-judging (its judgments, results.json and rejudge.json).")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The run folder holding the entry's images [default: RUN_DIR_OR_ENTRY when it is a run folder].")
@click.option("--board", type=click.Path(file_okay=False, path_type=Path), default=Path("leaderboard"),
              show_default=True, help="The leaderboard whose entries are named.")
@click.option("--judge", "-j", "judge_name", default=None,
              help="Where the judge is found (name or package.module:Class) [default: the entry's judge]; its "
                   "name and version must be the entry's.")
@click.option("--device", default=None)
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset root (default: cache).")
@click.option("--max-differ-fraction", type=click.FloatRange(0, 1), default=None,
              help="Share of verdicts that may differ for the entry to count as verified [default: 0.01].")
@click.option("--record", is_flag=True, default=False,
              help="Keep the summary beside the entry (<board>/verified/<entry>.json); the board then says it "
                   "was verified.")
@judge_option
@friendly_errors
def rejudge(entry, out, run_dir, board, judge_name, device, root, max_differ_fraction, record, judge_options):
    """Re-judge an entry's images with the same judge and compare verdicts with its records.

    \b
    actionbench rejudge mini-adi --run runs/mini/adi --out runs/rejudge-adi --record
    actionbench rejudge runs/mini/adi --out runs/rejudge-adi

    Anyone with the images can do this: the images are checked against the SHA-256 in the entry's
    records, judged again in --out, and each verdict compared. Exit status 1 when not verified.
    """
    from actionbench.errors import ActionBenchError
    from actionbench.leaderboard.entries import entry_of_run, write_verified
    from actionbench.leaderboard.rejudge import MAX_DIFFER_FRACTION, format_summary, rejudge as do_rejudge
    from actionbench.run.runfolder import SPEC_FILE

    path, name, results = _entry(Path(entry), board)
    images = run_dir or (path.parent if (path.parent / SPEC_FILE).is_file() else None)
    if images is None:
        raise ActionBenchError(f"{entry} is a leaderboard entry; give --run RUN_FOLDER, the folder with its images")
    if record and name is None:
        name = entry_of_run(results, board)
        if name is None:
            raise ActionBenchError(f"{entry} is not an entry of {board} (no entry holds its records); add it with "
                                   "`actionbench leaderboard --add` before recording a re-judging")
    summary = do_rejudge(results, images, out, judge=judge_name, device=check_device(device or default_device()),
                         judge_options=judge_options_from(judge_options) if judge_options else None, data_root=root,
                         max_differ_fraction=MAX_DIFFER_FRACTION if max_differ_fraction is None else max_differ_fraction)
    click.echo(format_summary(summary))
    if record:
        summary = dict(summary, entry=name)
        click.echo(f"recorded: {write_verified(board, name, summary)}")
    if not summary["verified"]:
        sys.exit(1)


@click.command()
@click.argument("entry", metavar="RUN_OR_ENTRY")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Run folder of the re-run [default: runs/reproduce-<entry>].")
@click.option("--board", type=click.Path(file_okay=False, path_type=Path), default=Path("leaderboard"),
              show_default=True, help="The leaderboard whose entries are named.")
@click.option("--device", default=None)
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset root (default: cache).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@friendly_errors
def reproduce(entry, out, board, device, root, as_json):
    """Re-run an entry from its recorded spec and say whether the new numbers fall inside its intervals.

    \b
    actionbench reproduce mini-adi                 re-runs leaderboard/results/mini-adi.json's spec
    actionbench reproduce runs/mini/adi --out runs/adi-again

    Method, config, backbone, dataset, suite, preset, training seeds and judge come from the entry.
    Exit status 1 when a number falls outside the entry's 95 % interval.
    """
    from actionbench.leaderboard.reproduce import format_report, reproduce as do_reproduce
    from actionbench.leaderboard.tables import slug

    path, name, results = _entry(Path(entry), board)
    label = name or results.get("run_name") or path.parent.name
    out = out or Path("runs") / f"reproduce-{slug(label)}"
    report = do_reproduce(results, out, device=check_device(device or default_device()), data_root=root)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report, label))
    if not report["reproduced"]:
        sys.exit(1)


commands = [rejudge, reproduce]
