"""``actionbench mini train|check|controlnet|judge|protocol|table|verdict|adi-samples|masks``: the offline ActionBench-mini world.

Imports only click at the top (the main CLI loads this module at start-up). The commands that
write weights check first, before anything heavy loads, that they would not overwrite the weights
shipped with the package (``--out`` elsewhere, or ``--replace-shipped`` on purpose).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from actionbench.errors import ConfigError, friendly_errors
from actionbench.worlds.mini.lab.table import GATE_WORLDS

_REPLACE_SHIPPED_HELP = "Allow writing into the weights shipped with the package (they are replaced)."


def replace_shipped_option(func):
    return click.option("--replace-shipped", is_flag=True, default=False, help=_REPLACE_SHIPPED_HELP)(func)


@click.group("mini")
def mini_group():
    """ActionBench-mini: a tiny SD-structured model trained offline on rendered figures, an exact judge."""


@mini_group.command("train")
@click.option("--world", "world_name", default="v1", show_default=True,
              help="World version: v1, v2 (starts from v1's shipped model; docs/mini-v2-design.md), v3c (from "
                   "v2's, with more benchmark-pose renders), v3p (from v2's, captions naming poses by their parts) or "
                   "v3q (both).")
@click.option("--steps", type=int, default=None, help="Optimisation steps (default: the world's first stage).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for model.safetensors + model.json (default: the shipped ones, with --replace-shipped).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@click.option("--judge/--no-judge", "fit_judge", default=False,
              help="Also refit the mini judge into the same folder, on renders passed through the new model (v1).")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False), default=None,
              help="Continue training from a folder with model.safetensors (e.g. the shipped one).")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak learning rate.")
@click.option("--new-lr", "new_block_learning_rate", type=float, default=None,
              help="Peak learning rate of the blocks the initial weights lack (v2's new attention blocks).")
@click.option("--seeds-per-pair", type=int, default=None, help="Training renders per (look, pose).")
@click.option("--action-pose-repeats", type=click.IntRange(min=1), default=None,
              help="Renders of each benchmark pose per everyday pose's (never named; v3c's lever 3: 3).")
@click.option("--pose-parts-fraction", type=click.FloatRange(0, 1), default=None,
              help="Share of renders captioned with their pose's parts, any pose (v3p's lever 5: 0.5).")
@click.option("--checkpoint-every", type=int, default=0, show_default=True, help="Save the EMA weights every N steps.")
@replace_shipped_option
@friendly_errors
def train_cmd(world_name, steps, out, seed, threads, fit_judge, init_from, learning_rate, new_block_learning_rate,
              seeds_per_pair, action_pose_repeats, pose_parts_fraction, checkpoint_every, replace_shipped):
    """Train the mini base model (seeded; a progress bar shows the loss); --init-from continues a run."""
    from actionbench.worlds.mini.folders import refuse_shipped, shipped_model_dir
    from actionbench.worlds.mini.world import MINI_V1, world_option

    world = world_option(world_name)
    if world.model_world:
        short = world.model_world.removeprefix("mini-")
        raise ConfigError(f"{world.name} has no base model of its own: it uses {world.model_world}'s (only its "
                          f"exemplars differ); train that one with --world {short}")
    refuse_shipped(out or shipped_model_dir(world.name), "actionbench mini train", replace_shipped)
    if fit_judge and world != MINI_V1:
        raise ConfigError(f"--judge fits v1's judge; drop --judge and fit {world.name}'s after training with "
                          f"`actionbench mini judge --world v2 --backbone {world.name}:FOLDER --out FOLDER`")

    from actionbench.worlds.mini.lab.train import stage_one_config, train_mini

    cfg = dataclasses.replace(stage_one_config(world.name), seed=seed, threads=threads, init_from=init_from,
                              checkpoint_every=checkpoint_every)
    overrides = {"steps": steps, "learning_rate": learning_rate, "new_block_learning_rate": new_block_learning_rate,
                 "seeds_per_pair": seeds_per_pair, "action_pose_repeats": action_pose_repeats,
                 "pose_parts_fraction": pose_parts_fraction}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    train_mini(cfg, out=out, log=click.echo, replace_shipped=replace_shipped)
    if fit_judge:
        from actionbench.worlds.mini.lab.judge_fit import fit_mini_judge

        fit_mini_judge(out=out, backbone=f"mini:{out}" if out else "mini", log=click.echo,
                       replace_shipped=replace_shipped)


@mini_group.command("check")
@click.option("--backbone", required=True, help="The model to check: mini-v2:FOLDER (a checkpoint too), mini, ...")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for check-<steps>.png and .json (default: the backbone's folder).")
@click.option("--seeds", type=int, default=8, show_default=True, help="Samples per prompt.")
@click.option("--steps", type=int, default=12, show_default=True, help="DDIM steps.")
@click.option("--guidance", type=float, default=4.0, show_default=True)
@click.option("--v2-judge", type=click.Path(file_okay=False, exists=True), default=None,
              help="Also read the samples with the v2 judge in this folder (judge.safetensors + judge.json).")
@friendly_errors
def check_cmd(backbone, out, seeds, steps, guidance, v2_judge):
    """Sample a mini model on everyday prompts with and without attributes and background types: a contact
    sheet, the v1 judge's pose and subject readings, the attributes' colour shares, and the v2 judge's readings."""
    from actionbench.worlds.mini.lab.check import check_model

    check_model(backbone, out=out, seeds=seeds, steps=steps, guidance=guidance, v2_judge=v2_judge, log=click.echo)


@mini_group.command("judge")
@click.option("--world", "world_name", default="v1", show_default=True,
              help="World version: v1 (pose and subject), or v2 (also attributes and background type).")
@click.option("--backbone", default=None,
              help="Model whose artefacts the judge learns to read through (default: the world's shipped one; "
                   "mini:/folder, mini-v2:/folder).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for judge.safetensors + judge.json (default: the shipped ones, with --replace-shipped).")
@click.option("--epochs", type=int, default=12, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="v2: seed of the renders, noise and training.")
@click.option("--per-pair", type=int, default=8, show_default=True, help="v2: training renders per look and pose.")
@click.option("--width", type=int, default=32, show_default=True, help="v2: channels of the network's first block.")
@click.option("--through-model", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="v2: share of the training renders also passed through the model (0: clean renders only, "
                   "no model loaded: a quick test of the network alone).")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@replace_shipped_option
@friendly_errors
def judge_cmd(world_name, backbone, out, epochs, seed, per_pair, width, through_model, threads,
              replace_shipped):
    """Refit the exact mini judge (renders, half of them passed through the model) and report held-out accuracy."""
    from actionbench.worlds.mini.folders import refuse_shipped, shipped_dir
    from actionbench.worlds.mini.world import MINI_V1, world_option

    world = world_option(world_name)
    refuse_shipped(out or shipped_dir(world.name), "actionbench mini judge", replace_shipped)

    import torch

    if threads:
        torch.set_num_threads(threads)
    if world == MINI_V1:
        from actionbench.worlds.mini.lab.judge_fit import fit_mini_judge

        fit_mini_judge(out=out, backbone=backbone or "mini", epochs=epochs, log=click.echo,
                       replace_shipped=replace_shipped)
    else:
        from actionbench.worlds.mini.lab.judge_v2_fit import fit_mini_v2_judge

        fit_mini_v2_judge(out=out, backbone=backbone or world.name, epochs=epochs, seed=seed, per_pair=per_pair,
                          width=width, through_model_fraction=through_model, log=click.echo,
                          replace_shipped=replace_shipped)


@mini_group.command("judge-check")
@click.option("--backbone", required=True, help="The v2 model that draws the images (mini-v2, mini-v2:FOLDER).")
@click.option("--judges", required=True, help="Two v2 judge folders fitted with different seeds: A,B.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for judge-check.json, CSVs, sheet.")
@click.option("--images", type=int, default=320, show_default=True, help="Images to sample (half with context).")
@click.option("--targets-per-action", type=click.IntRange(min=0), default=16, show_default=True,
              help="Images per benchmark action drawn through the pose ControlNet (0: skip the target poses).")
@friendly_errors
def judge_check_cmd(backbone, judges, out, images, targets_per_action):
    """Check the v2 judge on generated images: agreement of two judges per head, what each reads of what was
    asked, confusion matrices; and the 8 target poses through the pose ControlNet (recall, agreement, false
    alarms, the gate)."""

    folders = [f.strip() for f in judges.split(",") if f.strip()]
    if len(folders) != 2:
        raise ConfigError(f"--judges takes two folders, A,B; got {judges!r}")
    from actionbench.worlds.mini.lab.judge_check import check_judges

    check_judges(backbone, folders, out, n=images, log=click.echo, targets_per_action=targets_per_action)


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

    from actionbench.worlds.mini.lab.controlnet import ControlNetTrainConfig, train_mini_controlnet

    cfg = ControlNetTrainConfig(threads=threads)
    if steps is not None:
        cfg = dataclasses.replace(cfg, steps=int(steps))
    train_mini_controlnet(backbone, cfg, out=out, log=click.echo, replace_shipped=replace_shipped)


@mini_group.command("protocol")
@click.option("--backbone", default="mini", show_default=True, help="The world's model (mini, mini-v1, mini:/folder).")
@click.option("--dataset", default="mini", show_default=True)
@click.option("--judge", "judge_name", default="mini", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Folder for protocol.json and the curves (the world's data folder to ship it).")
@click.option("--methods", default=None, help="Comma-separated subset (default: every trained method).")
@click.option("--merge", "parts", default=None,
              help="Comma-separated protocol.json files measured in parts (--methods) on this world: join them "
                   "and re-apply the rule to their curves instead of measuring.")
@click.option("--sampler-only", is_flag=True, default=False,
              help="Measure rule 1 (the solver and its steps) only, keeping the method rows of --out's protocol.json "
                   "(or, where --out has none, of the world's shipped one).")
@friendly_errors
def protocol_cmd(backbone, dataset, judge_name, out, methods, parts, sampler_only):
    """Set the world's sampler and per-method training settings by the documented rule (held-out loss
    curves, never benchmark scores); writes protocol.json, which the suite applies."""
    import json
    from pathlib import Path

    from actionbench.worlds.mini.lab.protocol import merge_records, run_protocol, save_protocol

    if parts:
        records = [json.loads(Path(p.strip()).read_text()) for p in parts.split(",")]
        record = merge_records(records, world=f"{backbone} + {dataset} + {judge_name}")
        path = save_protocol(record, Path(out))
        for row in record["rows"]:
            click.echo(f"{row['row']}: {row['settings']} ({row['reason']})")
        click.echo(f"protocol: {path}")
        return
    chosen = [m.strip() for m in methods.split(",")] if methods else None
    rows_from = None
    if sampler_only:
        from actionbench.worlds.mini.folders import mini_folder
        from actionbench.worlds.mini.protocol import PROTOCOL_FILE

        if chosen or parts:
            raise ConfigError("--sampler-only measures rule 1 alone: drop --methods and --merge")
        source = next((p for p in (Path(out) / PROTOCOL_FILE, mini_folder(backbone) / PROTOCOL_FILE) if p.is_file()), None)
        if source is None:
            raise ConfigError(f"--sampler-only keeps the method rows of a protocol.json, and neither {out} nor "
                              f"{backbone}'s folder has one; measure the whole protocol first (drop --sampler-only)")
        rows_from = json.loads(source.read_text())
    click.echo(f"protocol: {run_protocol(backbone, dataset, judge_name, Path(out), chosen, log=click.echo, rows_from=rows_from)}")


@mini_group.command("table")
@click.option("--suite", default="mini", show_default=True,
              help=f"mini (the current world), mini-v1, mini-v2, or a v3 gate world ({', '.join(GATE_WORLDS)}).")
@click.option("--rows", default=None,
              help="Comma-separated rows (default: every method, null, and ADI's two controls). Each method brings "
                   "its rows (Method.table_rows): one named after it, and variants such as p_plus_4_anchors, "
                   "adi_oracle, adi_random_masks; an unknown name lists them all.")
@click.option("--train-seeds", type=click.IntRange(min=1), default=None,
              help="Training seeds per trained row (training-free rows run once: seeds change nothing there). "
                   "Default: 3 on mini-v2 and the v3 gate worlds (their pre-registered tests), else 1.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Rows run at once (default: one per core).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="A setting for every row (e.g. sampler.num_inference_steps=2 for a quick check).")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False), default="runs/mini", show_default=True)
@click.option("--leaderboard", "leaderboard_dir", type=click.Path(file_okay=False), default=None,
              help="Add the finished rows to this board (e.g. leaderboard); default: only a personal board in --runs.")
def table_cmd(suite, rows, train_seeds, jobs, overrides, runs_dir, leaderboard_dir):
    """Run the mini table: each row is `actionbench eval` in its own process (one torch thread), several at once,
    with one combined progress display; a failing row is reported and the others go on."""
    import os

    from actionbench.worlds.mini.lab.table import (GATE_WORLDS, PREREGISTERED_WORLD, board_name, defaults, rows_by_name,
                                              run_table, table_world)

    default_rows, default_seeds = defaults(suite)
    chosen = rows_by_name([r.strip() for r in rows.split(",")] if rows else default_rows)
    train_seeds = train_seeds or default_seeds
    jobs = jobs or max(1, os.cpu_count() or 1)
    from actionbench.api.spec import parse_overrides

    done, failed = run_table(chosen, suite, Path(runs_dir), train_seeds, jobs, parse_overrides(overrides))
    results = [path for _, path in done]
    if results:
        from actionbench.leaderboard import PROJECT_BOARD, add_result, render_leaderboard

        if leaderboard_dir:
            from actionbench.errors import ActionBenchError

            for row, path in done:
                # the table's own rows: a run from uncommitted code is added, and its row says "dirty source";
                # rows run with --set left the protocol, so they are added marked as such (never ranked)
                try:
                    added = add_result(path, Path(leaderboard_dir), name=board_name(suite, row.name), replace=True,
                                       allow_dirty=True, allow_partial=bool(overrides))
                    click.echo(f"added {added}")
                except ActionBenchError as error:  # one row refused must not keep the others off the board
                    failed.append((row, f"not added to {leaderboard_dir}: {error}"))
            render_leaderboard(Path(leaderboard_dir))
        else:
            render_leaderboard(PROJECT_BOARD, extra_results=results, page_dir=Path(runs_dir) / "leaderboard")
    click.echo(f"mini table: {len(done)} rows finished ({', '.join(r.name for r, _ in done)})")
    for row, why in failed:
        click.echo(f"  failed {row.name}: {why}")
    if table_world(suite) == PREREGISTERED_WORLD:
        _print_verdict(Path(runs_dir))
    if table_world(suite) in GATE_WORLDS:
        _print_gate(Path(runs_dir), table_world(suite))
    if failed:
        sys.exit(1)


@mini_group.command("adi-samples")
@click.option("--suite", default="mini-v2", show_default=True, help="A suite whose judge reads attributes (mini-v2).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="An ADI setting on top of the suite's.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the shares as JSON here.")
@friendly_errors
def adi_samples_cmd(suite, overrides, out):
    """How often ADI's action-different samples are what its action mask assumes: the judge reads the exemplar's
    person, with its attributes and background type, in another pose (generated samples, and the world's oracle)."""
    from actionbench.backbone import load_backbone
    from actionbench.dataset import load_dataset
    from actionbench.io import atomic_write_json
    from actionbench.api.registry import get_evaluator, get_suite
    from actionbench.api.spec import parse_overrides
    from actionbench.worlds.mini.lab.adi_samples_check import MEASURES, check_samples

    the_suite = get_suite(suite)
    dataset = load_dataset(the_suite.dataset)
    judge = get_evaluator(the_suite.judge)(dataset)
    if not hasattr(judge, "predict") or "contexts" not in (dataset.extra or {}):
        raise ConfigError(f"suite {suite!r} has no judge that reads attributes or no exemplar contexts; use --suite mini-v2")
    record = check_samples(the_suite, load_backbone(the_suite.backbone), dataset, judge, parse_overrides(overrides),
                           log=click.echo)
    for source, shares in record["sources"].items():
        click.echo(f"{source} ({shares['n']} samples): " + ", ".join(f"{m} {100 * shares[m]:.1f} %" for m in MEASURES))
    if out:
        atomic_write_json(Path(out), record)
        click.echo(f"written: {out}")


def _print_gate(runs: Path, world: str) -> None:
    from actionbench.errors import ActionBenchError
    from actionbench.worlds.mini.lab import verdict_v3

    try:
        click.echo("\n".join(verdict_v3.format_verdict(verdict_v3.verdict(runs, None, world=world))))
    except ActionBenchError as error:  # a gate row not run yet
        click.echo(f"{world} gate: not yet ({error})")


def _print_verdict(runs: Path) -> None:
    from actionbench.errors import ActionBenchError
    from actionbench.worlds.mini.lab.verdict import format_verdict, verdict

    try:
        click.echo("\n".join(format_verdict(verdict(runs), runs)))
    except ActionBenchError as error:  # null or sd not run: no check yet
        click.echo(f"pre-registered test: not yet ({error})")


@mini_group.command("verdict")
@click.option("--suite", type=click.Choice(["mini-v2", *GATE_WORLDS]), default="mini-v2", show_default=True,
              help="Which pre-registered test: mini-v2 (docs/mini-v2-preregistration.md) or a v3 lever's world, "
                   f"{', '.join(GATE_WORLDS)} (each its gate, mask selectivity and step-matched claim: "
                   "docs/mini-v3-preregistration.md).")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False, exists=True), default="runs/mini", show_default=True,
              help="The folder of `actionbench mini table --suite SUITE` (one run folder per row), or a leaderboard "
                   "folder holding the rows as results/SUITE-ROW.json (e.g. leaderboard).")
@click.option("--masks", "masks_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="mini-v3: the record of `actionbench mini masks --suite mini-v3 --out FILE` (the selectivity).")
@click.option("--n-boot", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the result as JSON.")
@friendly_errors
def verdict_cmd(suite, runs_dir, masks_file, n_boot, as_json):
    """A pre-registered test recomputed from the committed rows. mini-v2: the setup check (a), then, when the ADI
    rows and their comparators are there, the claim (b) and its verdict (c). mini-v3: the gate, the masks'
    selectivity and the claim with Holm's correction (at bootstrap seeds 0, 1 and 2)."""
    import json

    runs = Path(runs_dir)
    if suite != "mini-v2":
        from actionbench.io import read_json
        from actionbench.worlds.mini.lab import verdict_v3

        masks = read_json(Path(masks_file), "mini masks record") if masks_file else None
        result = verdict_v3.verdict(runs, masks, n_boot, world=suite)
        click.echo(json.dumps(result, indent=2) if as_json else "\n".join(verdict_v3.format_verdict(result)))
        return
    if masks_file:
        raise ConfigError(f"--masks is read by the v3 tests only; add --suite {' or '.join(GATE_WORLDS)}")
    from actionbench.worlds.mini.lab.verdict import format_verdict, verdict

    result = verdict(runs, n_boot)
    click.echo(json.dumps(result, indent=2) if as_json else "\n".join(format_verdict(result, runs)))


@mini_group.command("masks")
@click.option("--suite", default="mini-v2", show_default=True, help="A suite of a world with context signatures.")
@click.option("--stages", default="untrained,trained", show_default=True,
              help="Identifiers to diagnose: untrained (ADI's initialisation) and/or trained (after P+ at ADI's "
                   "anchors, steps and learning rate).")
@click.option("--draws", type=click.IntRange(min=1), default=8, show_default=True, help="Noise draws per exemplar.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the record as JSON here.")
@friendly_errors
def masks_cmd(suite, stages, draws, seed, out):
    """How selective ADI's masks are: the share of the context direction's and of the action direction's gradient
    energy each mask keeps, per kept fraction (1.0 = random), per action, for each threshold preset."""
    from actionbench.backbone import load_backbone
    from actionbench.api.config import build_config
    from actionbench.dataset import load_dataset
    from actionbench.io import atomic_write_json
    from actionbench.methods.adi import ADI
    from actionbench.methods.p_plus import PPlus
    from actionbench.api.registry import get_suite
    from actionbench.worlds.mini.lab.masks import diagnose, format_table
    from actionbench.worlds.mini.world import world_named

    wanted = tuple(s.strip() for s in stages.split(",") if s.strip())
    if not wanted or set(wanted) - {"untrained", "trained"}:
        raise ConfigError(f"--stages {stages!r}: give untrained, trained or both, comma-separated")
    the_suite = get_suite(suite)
    world = world_named(the_suite.dataset)
    if not world.signatures:
        raise ConfigError(f"suite {suite!r} has no context signatures to diagnose; use --suite mini-v2")
    adi_cfg = build_config(ADI.Config, the_suite.settings_for("adi", ADI.Config))
    pplus_cfg = build_config(PPlus.Config, {**the_suite.settings_for("p_plus", PPlus.Config),
                                            "train_steps": adi_cfg.train_steps, "batch_size": adi_cfg.batch_size,
                                            "learning_rate": adi_cfg.learning_rate})
    record = diagnose(world, load_backbone(the_suite.backbone), load_dataset(the_suite.dataset), adi_cfg, pplus_cfg,
                      wanted, draws, seed, log=click.echo)
    click.echo(format_table(record))
    if out:
        atomic_write_json(Path(out), record)
        click.echo(f"written: {out}")


commands = [mini_group]


@mini_group.command("handle-check")
@click.option("--backbone", required=True, help="The model to ask: mini-v3p, mini-v2 (the control), mini-v2:FOLDER, ...")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for handle-check.json and .png.")
@click.option("--suite", default="mini-v2", show_default=True, help="The suite whose sampler and judge are used.")
@click.option("--seeds", type=click.IntRange(min=1), default=16, show_default=True, help="Images per prompt.")
@friendly_errors
def handle_check_cmd(backbone, out, suite, seeds):
    """Ask the model for each benchmark pose by its parts (captions.POSE_PARTS) and read the pose with the suite's
    judge: whether the text has a handle on which benchmark pose to draw (lever 5, docs/mini-v3-preregistration.md)."""
    from actionbench.worlds.mini.lab.handle_check import check_handle

    check_handle(backbone, out, suite=suite, seeds=seeds, log=click.echo)
