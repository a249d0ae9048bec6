"""customize, generate, judge, eval: each builds one RunSpec and one RunOptions and calls the runner."""
from __future__ import annotations

from pathlib import Path

import click

from actionbench.errors import friendly_errors
from actionbench.api.spec import DEFAULT_JUDGE, RunOptions, RunSpec

from .options import default_device, judge_option, judge_options_from, launcher_shard, run_options


@click.command()
@friendly_errors
@run_options
def customize(spec: RunSpec, options: RunOptions):
    """Learn every action of the dataset with a method (artifacts under OUT/artifacts)."""
    from actionbench.run.runner import customize as do_customize, open_run

    run = open_run(spec, options)
    do_customize(run, options.shard)
    click.echo(f"artifacts in {run.out / 'artifacts'}")


@click.command()
@friendly_errors
@run_options
def generate(spec: RunSpec, options: RunOptions):
    """Generate the protocol's images (2 per action and subject) from learned artifacts."""
    from actionbench.run.runner import generate as do_generate, open_run

    run = open_run(spec, options)
    made = do_generate(run, options.shard)
    click.echo(f"{made} new images in {run.out / 'images'}")


@click.command(name="eval")
@click.option("--dry-run", is_flag=True, default=False,
              help="Check everything the run needs and print its plan (units, steps, time, memory); write nothing.")
@friendly_errors
@run_options
def eval_command(spec: RunSpec, options: RunOptions, dry_run: bool):
    """Customize, generate and judge in one go; resumes a killed run in the same --out.

    Under torchrun / accelerate launch (WORLD_SIZE > 1, no --shard) the processes split the units and
    meet at barriers; rank 0 writes results.json."""
    from actionbench.run.runner import evaluate

    if dry_run:
        from actionbench.run.plan import dry_run as plan_dry_run

        for line in plan_dry_run(spec, options):
            click.echo(line)
        return
    path, reports = launched(options, lambda ctx: evaluate(spec, options, ctx))
    if path is not None and reports:
        print_summary(path)


@click.command()
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None, help="Run folder to judge.")
@click.option("--images", type=click.Path(exists=True, path_type=Path), default=None,
              help="Bring your own images: a folder laid out as ACTION/SUBJECT/K.png, or a CSV.")
@click.option("--dataset", "-d", default=None, help="Dataset the images are for (with --images).")
@click.option("--judge", "-j", "judge_name", default=None,
              help="Judge (see `actionbench judges`). Default: the run's suite's judge (mini-v2 for a --suite mini-v2 "
                   "run), or clip for runs without a suite and for --images.")
@click.option("--shard", default=None, metavar="I/N")
@click.option("--device", default=None)
@click.option("--root", type=click.Path(path_type=Path), default=None)
@judge_option
@friendly_errors
def judge(out, images, dataset, judge_name, shard, device, root, judge_options):
    """Judge a run's images (or your own) and write results.json."""
    from actionbench.devices import check_device
    from actionbench.run.runner import judge_run

    device = check_device(device or default_device())
    options = judge_options_from(judge_options)
    if images is not None:
        from actionbench.byo import judge_images

        path = judge_images(images, dataset=dataset or "v1", judge_name=judge_name or DEFAULT_JUDGE, out=out, device=device,
                            data_root=root, judge_options=options)
        click.echo(f"results: {path}")
        return
    if out is None:
        raise click.UsageError("give --out RUN_FOLDER (or --images DIR)")
    shard_t, world = launcher_shard(shard)
    run_opts = RunOptions(device=device, shard=shard_t, world_size=world, data_root=root, judge_options=options)
    path, reports = launched(run_opts, lambda ctx: judge_run(out, judge_name, run_opts, ctx))
    if path is not None and reports:
        click.echo(f"results: {path}")


def launched(options: RunOptions, call):
    """``call(ctx)`` in this process alone (``ctx`` None), or, under torchrun / accelerate launch (WORLD_SIZE > 1,
    no --shard), as one rank of the launch. Returns what it returned and whether this process reports it (rank 0)."""
    if options.world_size == 1:
        return call(None), True
    from actionbench.run import distributed

    ctx = distributed.init(options.device)
    try:
        result = call(ctx)
    except BaseException:
        distributed.shutdown(ctx, finished=False)
        raise
    distributed.shutdown(ctx)
    return result, ctx.is_main


def print_summary(path: Path) -> None:
    from actionbench.io import read_json
    from actionbench.summary import board_dirs, closing_lines, find_floor

    record = read_json(path)
    for line in closing_lines(record, find_floor(record, board_dirs())):
        click.echo(line)
    click.echo(f"results: {path}")


commands = [customize, generate, eval_command, judge]
