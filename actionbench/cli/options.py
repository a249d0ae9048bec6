"""Options shared by the run commands, turned into one ``RunSpec`` and one ``RunOptions``."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import click

from actionbench.api.spec import RunOptions, RunSpec, parse_overrides, parse_shard


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def judge_options_from(pairs) -> dict:
    """``key=value`` strings to judge options; numbers and booleans are parsed, the rest stay strings."""
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


def launcher_shard(shard: str | None) -> tuple[tuple[int, int], int]:
    """--shard wins; otherwise torchrun / accelerate launch give (rank, world size)."""
    if shard:
        return parse_shard(shard), 1
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return (rank, world), world


def judge_option(func):
    return click.option("--judge-option", "judge_options", multiple=True, metavar="KEY=VALUE",
                        help="Pass an option to the judge, e.g. model=ViT-B-32, pretrained=/weights.bin, db=labels.sqlite.")(func)


def check_default_suite(spec: RunSpec, root) -> None:
    """Without --suite a run targets the download suite (v1 data, SD 2.1): say at once, in one line, when
    this machine has neither, and what to run instead, rather than failing deep in a load."""
    from actionbench.errors import ActionBenchError

    lacking = []
    if spec.dataset == "v1":
        from actionbench.dataset import load_dataset

        try:
            load_dataset("v1", root=root)
        except ActionBenchError:
            lacking.append("the ActionBench v1 images")
    if spec.backbone == "sd21" and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        from actionbench.backbone import SD21_HUB_ID

        if not isinstance(try_to_load_from_cache(SD21_HUB_ID, "unet/config.json"), str):
            lacking.append("the SD 2.1 weights (offline, not in the hub cache)")
    if lacking:
        raise ActionBenchError(
            f"no --suite given, so this runs the download suite v1, but this machine lacks {' and '.join(lacking)}: "
            "add `--suite mini` for the offline ActionBench-mini world, or run `actionbench download --version v1` "
            "(and fetch SD 2.1) first")


def run_options(func):
    """The options of customize / generate / eval: the command receives ``spec`` and ``options``."""
    options = [
        click.option("--method", "-m", default=None, help="Method name (see `actionbench methods`) or package.module:Class."),
        click.option("--suite", default="v1", show_default=True,
                     help="Defaults for --backbone/--dataset/--judge and the suite's method settings: v1 = sd21 + "
                          "ActionBench v1 + CLIP; mini = the offline ActionBench-mini world (see `actionbench suites`)."),
        click.option("--backbone", "-b", default=None, help="sd21, tiny, mini, a hub id (org/repo) or local:/folder "
                                                            "(default: the suite's)."),
        click.option("--dataset", "-d", default=None, help="v1 (downloaded), synthetic or mini (default: the suite's)."),
        click.option("--judge", "-j", "judge_name", default=None, help="Judge (see `actionbench judges`; default: the suite's)."),
        click.option("--out", "-o", type=click.Path(path_type=Path), default=None, help="Run folder (default runs/<name>)."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a method config field, e.g. train_steps=100 or sampler.num_inference_steps=20."),
        click.option("--preset", default=None, metavar="NAME[,NAME]",
                     help="smoke: few training and sampling steps, still all 368 images; or a method's named "
                          "settings (e.g. adi's random_masks, pplus_anchors; see the method's docs)."),
        click.option("--subjects", "subjects_file", type=click.Path(path_type=Path), default=None, metavar="FILE",
                     help="Your own subjects instead of the dataset's: CSV id,category,name (never ranked with the "
                          "standard protocol; docs/custom-prompts.md)."),
        click.option("--prompts", "prompts_file", type=click.Path(path_type=Path), default=None, metavar="FILE",
                     help='Your own prompts: CSV id,template, each template with {subject} and {action} once, e.g. '
                          '"{subject} {action} on a beach"; every subject is drawn in every prompt.'),
        click.option("--train-seeds", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Customize each action N times (training seeds seed, seed+1, ...); results pool them "
                          "and keep the per-seed numbers."),
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
        judge_option,
    ]

    @functools.wraps(func)
    def with_spec(*args, method, suite, backbone, dataset, judge_name, out, overrides, preset, subjects_file,
                  prompts_file, train_seeds, shard, device, dtype, root, attention, vae_slicing, gradient_checkpointing,
                  judge_options, **rest):
        from actionbench.custom import read_custom

        if not method:
            raise click.UsageError("--method is required (see `actionbench methods`)")
        spec = RunSpec.build(method, parse_overrides(overrides), suite=suite, backbone=backbone, dataset=dataset,
                             judge=judge_name, preset=preset, train_seeds=train_seeds,
                             custom=read_custom(subjects_file, prompts_file))
        from actionbench.devices import check_device
        from actionbench.run.runfolder import check_run_folder

        if click.get_current_context().get_parameter_source("suite") == click.core.ParameterSource.DEFAULT:
            check_default_suite(spec, root)
        shard_t, world = launcher_shard(shard)
        if out is not None:
            check_run_folder(out)
        run_opts = RunOptions(out=out, device=check_device(device or default_device()), dtype=dtype, shard=shard_t,
                              world_size=world, data_root=root, attention=attention, vae_slicing=vae_slicing,
                              gradient_checkpointing=gradient_checkpointing,
                              judge_options=judge_options_from(judge_options))
        return func(*args, spec=spec, options=run_opts, **rest)

    for option in reversed(options):
        with_spec = option(with_spec)
    return with_spec
