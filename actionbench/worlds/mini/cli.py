"""``actionbench mini train|controlnet|judge|table``: the offline ActionBench-mini world.

Imports only click at the top (the main CLI loads this module at start-up). The commands that
write weights check first, before anything heavy loads, that they would not overwrite the weights
shipped with the package (``--out`` elsewhere, or ``--replace-shipped`` on purpose).
"""
from __future__ import annotations

import dataclasses
import sys
import traceback
from pathlib import Path

import click

from actionbench.errors import friendly_errors

_REPLACE_SHIPPED_HELP = "Allow writing into the weights shipped with the package (they are replaced)."


def replace_shipped_option(func):
    return click.option("--replace-shipped", is_flag=True, default=False, help=_REPLACE_SHIPPED_HELP)(func)


@click.group("mini")
def mini_group():
    """ActionBench-mini: a tiny SD-structured model trained offline on rendered figures, an exact judge."""


@mini_group.command("train")
@click.option("--steps", type=int, default=None, help="Optimisation steps (default: the shipped model's).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for model.safetensors + model.json (default: the shipped ones, with --replace-shipped).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@click.option("--judge/--no-judge", "fit_judge", default=False,
              help="Also refit the mini judge into the same folder, on renders passed through the new model.")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False), default=None,
              help="Continue training from a folder with model.safetensors (e.g. the shipped one).")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak learning rate.")
@click.option("--checkpoint-every", type=int, default=0, show_default=True, help="Save the EMA weights every N steps.")
@replace_shipped_option
@friendly_errors
def train_cmd(steps, out, seed, threads, fit_judge, init_from, learning_rate, checkpoint_every, replace_shipped):
    """Train the mini base model (seeded; a progress bar shows the loss); --init-from continues a run."""
    from actionbench.worlds.mini.folders import refuse_shipped, shipped_dir

    refuse_shipped(out or shipped_dir(), "actionbench mini train", replace_shipped)

    from actionbench.worlds.mini.train import TrainConfig, train_mini

    cfg = TrainConfig(seed=seed, threads=threads, init_from=init_from, checkpoint_every=checkpoint_every)
    if steps is not None:
        cfg = dataclasses.replace(cfg, steps=int(steps))
    if learning_rate is not None:
        cfg = dataclasses.replace(cfg, learning_rate=float(learning_rate))
    train_mini(cfg, out=out, log=click.echo, replace_shipped=replace_shipped)
    if fit_judge:
        from actionbench.worlds.mini.judge import fit_mini_judge

        fit_mini_judge(out=out, backbone=f"mini:{out}" if out else "mini", log=click.echo,
                       replace_shipped=replace_shipped)


@mini_group.command("judge")
@click.option("--backbone", default="mini", show_default=True,
              help="Model whose artefacts the judge learns to read through (mini or mini:/folder).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for judge.safetensors + judge.json (default: the shipped ones, with --replace-shipped).")
@click.option("--epochs", type=int, default=12, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@replace_shipped_option
@friendly_errors
def judge_cmd(backbone, out, epochs, threads, replace_shipped):
    """Refit the exact mini judge (renders, half of them passed through the model) and report held-out accuracy."""
    from actionbench.worlds.mini.folders import refuse_shipped, shipped_dir

    refuse_shipped(out or shipped_dir(), "actionbench mini judge", replace_shipped)

    import torch

    from actionbench.worlds.mini.judge import fit_mini_judge

    if threads:
        torch.set_num_threads(threads)
    fit_mini_judge(out=out, backbone=backbone, epochs=epochs, log=click.echo, replace_shipped=replace_shipped)


@mini_group.command("controlnet")
@click.option("--backbone", default="mini", show_default=True, help="The frozen model it conditions (mini or mini:/folder).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder to write (default: controlnet/ beside the backbone's weights, where the method finds it).")
@click.option("--steps", type=int, default=None, help="Optimisation steps (default: the shipped ControlNet's).")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@replace_shipped_option
@friendly_errors
def controlnet_cmd(backbone, out, steps, threads, replace_shipped):
    """Train the pose ControlNet of a mini model (the `controlnet` method's weights on mini)."""
    from actionbench.worlds.mini.folders import CONTROLNET_DIR, mini_folder, refuse_shipped

    out = refuse_shipped(out or mini_folder(backbone) / CONTROLNET_DIR, "actionbench mini controlnet", replace_shipped,
                         replaces_folder=True)

    from actionbench.worlds.mini.controlnet import ControlNetTrainConfig, train_mini_controlnet

    cfg = ControlNetTrainConfig(threads=threads)
    if steps is not None:
        cfg = dataclasses.replace(cfg, steps=int(steps))
    train_mini_controlnet(backbone, cfg, out=out, log=click.echo, replace_shipped=replace_shipped)


def _config_for(method_name: str, num_inference_steps: int | None, train_steps: int | None) -> dict:
    """The method's defaults, with the given overrides (so a table row equals `actionbench eval --suite mini`)."""
    from actionbench.registry import get_method

    cls = get_method(method_name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    config = {"sampler.num_inference_steps": num_inference_steps} if num_inference_steps is not None else {}
    if train_steps is not None and "train_steps" in fields:
        config["train_steps"] = train_steps
    return config


@mini_group.command("table")
@click.option("--methods", default=None, help="Comma-separated methods (default: every registered one).")
@click.option("--num-inference-steps", type=int, default=None, help="Override every method's sampling steps.")
@click.option("--train-steps", type=int, default=None, help="Override train_steps of methods that have it.")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False), default="runs/mini", show_default=True)
@click.option("--leaderboard", "leaderboard_dir", type=click.Path(file_okay=False), default="leaderboard",
              show_default=True)
def table_cmd(methods, num_inference_steps, train_steps, runs_dir, leaderboard_dir):
    """Run methods on the mini suite (backbone "mini", dataset "mini", judge "mini") and add them to the leaderboard."""
    from actionbench.leaderboard import add_result, render_leaderboard
    from actionbench.registry import METHODS
    from actionbench.runner import RunOptions, RunSpec, evaluate

    names = [m.strip() for m in methods.split(",")] if methods else METHODS.names()
    done, failed = [], []
    for name in names:
        try:
            spec = RunSpec.build(name, _config_for(name, num_inference_steps, train_steps), suite="mini")
            out = Path(runs_dir) / name
            path = evaluate(spec, RunOptions(out=out))
            if path is not None:
                add_result(path, leaderboard_dir, name=f"mini-{name}", replace=True)  # the table refreshes its rows
                done.append(name)
        except Exception as exc:  # one method failing (e.g. no ControlNet for mini) must not stop the table
            failed.append((name, f"{type(exc).__name__}: {exc}"))
            traceback.print_exc(file=sys.stderr)
    render_leaderboard(leaderboard_dir)
    click.echo(f"mini table: {len(done)} methods added ({', '.join(done)})")
    for name, why in failed:
        click.echo(f"  skipped {name}: {why}")


commands = [mini_group]
