"""The ``actionbench`` command line: a thin click layer; each command calls one public function."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from actionbench.errors import ActionBenchError, friendly_errors


# suite -> default (backbone, dataset, judge)
SUITES = {"v1": ("sd21", "v1", "clip"), "mini": ("mini", "mini", "mini")}


def run_options(func):
    """Options shared by customize / generate / judge / eval."""
    options = [
        click.option("--method", "-m", default=None, help="Method name (see `actionbench methods`) or package.module:Class."),
        click.option("--suite", type=click.Choice(sorted(SUITES)), default="v1", show_default=True,
                     help="Defaults for --backbone/--dataset/--judge: v1 = sd21 + ActionBench v1 + CLIP; "
                          "mini = the offline ActionBench-mini world (shipped model, rendered data, exact judge)."),
        click.option("--backbone", "-b", default=None, help="sd21, tiny, mini, a hub id (org/repo) or local:/folder "
                                                            "(default: the suite's)."),
        click.option("--dataset", "-d", default=None, help="v1 (downloaded), synthetic or mini (default: the suite's)."),
        click.option("--judge", "-j", "judge_name", default=None,
                     help="Judge (see `actionbench judges`; default: the suite's)."),
        click.option("--out", "-o", type=click.Path(path_type=Path), default=None, help="Run folder (default runs/<name>)."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a method config field."),
        click.option("--preset", type=click.Choice(["smoke"]), default=None,
                     help="smoke: few training and sampling steps, still all 368 images."),
        click.option("--shard", default=None, metavar="I/N", help="Only units whose id hashes to I mod N."),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)."),
        click.option("--dtype", default="fp32", type=click.Choice(["fp32", "fp16", "bf16"]), show_default=True,
                     help="Weights dtype of the frozen backbone."),
        click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset root (default: cache)."),
        click.option("--attention", default="sdpa", type=click.Choice(["sdpa", "classic"]), show_default=True,
                     help="UNet attention: torch SDPA (fast) or the classic softmax(QK^T)V, for comparison."),
        click.option("--vae-slicing", is_flag=True, default=False, help="Decode images one at a time (less memory)."),
        click.option("--gradient-checkpointing", is_flag=True, default=False,
                     help="Recompute UNet activations when training (less memory, slower)."),
    ]

    @functools.wraps(func)
    def with_suite(*args, suite, **kwargs):
        for key, value in zip(("backbone", "dataset", "judge_name"), SUITES[suite]):
            if kwargs.get(key) is None:
                kwargs[key] = value
        return func(*args, **kwargs)

    for option in reversed(options):
        with_suite = option(with_suite)
    return with_suite


def judge_option(func):
    return click.option("--judge-option", "judge_options", multiple=True, metavar="KEY=VALUE",
                        help="Pass an option to the judge, e.g. model=ViT-B-32, pretrained=/weights.bin, db=labels.sqlite.")(func)


def _judge_options(pairs) -> dict:
    """``key=value`` strings to judge options; numbers and booleans are parsed, the rest stay strings."""
    from actionbench.runner import parse_overrides

    options = {}
    for key, value in parse_overrides(pairs).items():
        lowered = value.lower()
        if lowered in ("true", "false"):
            options[key] = lowered == "true"
            continue
        for cast in (int, float):
            try:
                options[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            options[key] = value
    return options


def _device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _distributed_shard(shard: str | None) -> tuple[tuple[int, int], int]:
    """--shard wins; otherwise torchrun / accelerate launch give (rank, world size)."""
    from actionbench.runner import parse_shard

    if shard:
        return parse_shard(shard), 1
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return (rank, world), world


def _backbone_options(attention, vae_slicing, gradient_checkpointing) -> dict:
    return {"attention": attention, "vae_slicing": vae_slicing, "gradient_checkpointing": gradient_checkpointing}


def _spec(method, backbone, dataset, overrides, preset):
    from actionbench.runner import RunSpec, parse_overrides

    if not method:
        raise click.UsageError("--method is required (see `actionbench methods`)")
    return RunSpec(method=method, method_config=parse_overrides(overrides), backbone=backbone, dataset=dataset,
                   preset=preset)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="actionbench")
def main():
    """ActionBench: benchmark action customization in text-to-image diffusion."""


@main.command()
@click.option("--version", "version", default="v1", show_default=True)
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Target folder (default: cache).")
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path), default=None,
              help="Import from a local clone, folder or zip instead of downloading.")
@friendly_errors
def download(version, root, source):
    """Fetch ActionBench images from the pinned upstream commit and verify every file."""
    from actionbench.download import download as do_download

    click.echo(str(do_download(version=version, root=root, source=source)))


@main.command()
@click.option("--version", "version", default="v1", show_default=True)
@click.option("--root", type=click.Path(path_type=Path), default=None)
@friendly_errors
def verify(version, root):
    """Re-check every dataset file against the manifest's SHA-256."""
    from actionbench.download import verify as do_verify

    click.echo(str(do_verify(version=version, root=root)))


def _list_registered(registry, describe) -> None:
    """One line per registered name; a plugin that fails to import is listed as broken, not fatal."""
    for entry in registry.entries():
        try:
            line = describe(registry.get(entry.name))
        except ActionBenchError as exc:
            line = f"(broken: {exc})"
        click.echo(f"{entry.name:20s} {line}" + ("" if entry.source == "built-in" else f"  [{entry.source}]"))


@main.command()
@friendly_errors
def methods():
    """List available methods."""
    from actionbench.registry import METHODS

    _list_registered(METHODS, lambda cls: cls.summary)


@main.command()
@friendly_errors
def judges():
    """List available judges."""
    from actionbench.registry import JUDGES

    _list_registered(JUDGES, lambda cls: (cls.__doc__ or "").strip().splitlines()[0])


@main.command()
@run_options
@friendly_errors
def customize(method, backbone, dataset, judge_name, out, overrides, preset, shard, device, dtype, root, attention,
              vae_slicing, gradient_checkpointing):
    """Learn every action of the dataset with a method (artifacts under OUT/artifacts)."""
    from actionbench.runner import customize as do_customize, open_run

    shard_t, _ = _distributed_shard(shard)
    run = open_run(_spec(method, backbone, dataset, overrides, preset), out, _device(device), root, dtype,
                   backbone_options=_backbone_options(attention, vae_slicing, gradient_checkpointing))
    do_customize(run, shard_t)
    click.echo(f"artifacts in {run.out / 'artifacts'}")


@main.command()
@run_options
@friendly_errors
def generate(method, backbone, dataset, judge_name, out, overrides, preset, shard, device, dtype, root, attention,
              vae_slicing, gradient_checkpointing):
    """Generate the protocol's images (2 per action and subject) from learned artifacts."""
    from actionbench.runner import generate as do_generate, open_run

    shard_t, _ = _distributed_shard(shard)
    run = open_run(_spec(method, backbone, dataset, overrides, preset), out, _device(device), root, dtype,
                   backbone_options=_backbone_options(attention, vae_slicing, gradient_checkpointing))
    made = do_generate(run, shard_t)
    click.echo(f"{made} new images in {run.out / 'images'}")


@main.command()
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None, help="Run folder to judge.")
@click.option("--images", type=click.Path(exists=True, path_type=Path), default=None,
              help="Bring your own images: a folder laid out as ACTION/SUBJECT/K.png, or a CSV.")
@click.option("--dataset", "-d", default=None, help="Dataset the images are for (with --images).")
@click.option("--judge", "-j", "judge_name", default="clip", show_default=True)
@click.option("--shard", default=None, metavar="I/N")
@click.option("--device", default=None)
@click.option("--root", type=click.Path(path_type=Path), default=None)
@judge_option
@friendly_errors
def judge(out, images, dataset, judge_name, shard, device, root, judge_options):
    """Judge a run's images (or your own) and write results.json."""
    import time

    from actionbench.results import now_iso
    from actionbench.runner import judge as do_judge, judge_key, make_evaluator, missing_work, open_existing_run, write_results

    if images is not None:
        from actionbench.byo import judge_images

        path = judge_images(images, dataset=dataset or "v1", judge_name=judge_name, out=out, device=_device(device),
                            data_root=root, judge_options=_judge_options(judge_options))
        click.echo(f"results: {path}")
        return
    if out is None:
        raise click.UsageError("give --out RUN_FOLDER (or --images DIR)")
    started, t0 = now_iso(), time.perf_counter()
    shard_t, world = _distributed_shard(shard)
    run = open_existing_run(out, data_root=root)
    ctx = None
    if world > 1:  # torchrun / accelerate launch: split by pair, meet, rank 0 writes results.json
        from actionbench import distributed

        ctx = distributed.init(_device(device))
        device = distributed.device_for(ctx, _device(device))
    evaluator = make_evaluator(judge_name, run.dataset, _device(device), _judge_options(judge_options))
    if ctx is not None:
        try:
            distributed._stage(ctx, do_judge, run, evaluator, shard_t)
        finally:
            distributed.shutdown(ctx)
        if not ctx.is_main:
            return
    else:
        do_judge(run, evaluator, shard_t)
    missing = missing_work(run, judge_key(evaluator))
    if missing["judgments"]:
        click.echo(f"{len(missing['judgments'])} images are not judged yet (missing images or other shards)")
        return
    click.echo(f"results: {write_results(run, evaluator, started, time.perf_counter() - t0, world)}")


@main.command(name="eval")
@run_options
@judge_option
@friendly_errors
def eval_command(method, backbone, dataset, judge_name, out, overrides, preset, shard, device, dtype, root, attention,
                 vae_slicing, gradient_checkpointing, judge_options):
    """Customize, generate and judge in one go; resumes a killed run in the same --out.

    Under torchrun / accelerate launch (WORLD_SIZE > 1, no --shard) the processes split the units and
    meet at barriers; rank 0 writes results.json."""
    from actionbench.runner import evaluate

    spec = _spec(method, backbone, dataset, overrides, preset)
    options = _backbone_options(attention, vae_slicing, gradient_checkpointing)
    shard_t, world = _distributed_shard(shard)
    if world > 1:
        from actionbench import distributed

        ctx = distributed.init(_device(device))
        try:
            path = distributed.evaluate(spec, out, judge_name, _device(device), root, dtype, backbone_options=options,
                                        ctx=ctx, judge_options=_judge_options(judge_options))
        finally:
            distributed.shutdown(ctx)
        if path is not None and ctx.is_main:
            _print_summary(path)
        return
    path = evaluate(spec, out, judge_name, _device(device), shard_t, root, dtype, world_size=world,
                    backbone_options=options, judge_options=_judge_options(judge_options))
    if path is not None:
        _print_summary(path)


def _print_summary(path: Path) -> None:
    from actionbench.io import read_json

    record = read_json(path)
    m = record["metrics"]
    click.echo(
        f"{record['spec']['method']} on {record['spec']['dataset']} ({record['spec']['backbone']['id']}, judge "
        f"{record['judge']['name']}): action {100 * m['action']['mean']:.2f}%  subject {100 * m['subject']['mean']:.2f}%  "
        f"total {100 * m['total']['mean']:.2f}%  (n={m['n']})"
    )
    click.echo(f"results: {path}")


@main.command()
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


@main.command()
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


@main.command(name="check-method")
@click.argument("method")
@click.option("--keep", type=click.Path(path_type=Path), default=None, help="Keep the check's outputs here.")
@friendly_errors
def check_method(method, keep):
    """Run a method adapter through the contract on the tiny backbone and synthetic set."""
    from actionbench.contract import check_method as do_check

    report = do_check(method, workdir=keep)
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.ok else 1)


# Commands of the human-evaluation tools and of the mini world (their modules import only click at the top).
from actionbench.evaluators.human.cli import commands as _human_commands  # noqa: E402
from actionbench.worlds.mini.cli import commands as _mini_commands  # noqa: E402

for _command in _human_commands + _mini_commands:
    main.add_command(_command)

if __name__ == "__main__":
    main()
