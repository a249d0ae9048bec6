"""The mini world's own protocol, set by a rule that treats every method alike and never looks at a
benchmark score.

The v1 settings (50 DDIM steps, 250 to 3,000 training steps, SD's learning rates) were made for an
865M-parameter UNet at 768 px. On a 1M-parameter world they may be wasteful (too many steps) or
too weak (a fine-tuning learning rate that hardly moves the model). The rule:

1. **Sampler**: the fewest steps (of ``SAMPLER_CANDIDATES``), over the solvers ``SAMPLER_SOLVERS`` (DDIM,
   DPM-Solver++ 2M, UniPC; a tie goes to the earlier one), whose images the world's judge reads the same as
   at 50 DDIM steps (pose and subject) for at least 98 % of images, on the base model's own trained everyday
   prompts (no method involved).
2. **Learning rate**, per method: the smallest multiple (x1, x10, x100) of the method's default
   learning rate at which the held-out exemplar denoising loss drops measurably (by 1 % of its start)
   within the method's default number of steps (capped at ``MAX_CURVE_STEPS``), without ending above
   its start. If no multiple does, the default stays (no change without evidence). ADI's
   action-different tuning gets the same rule on single exemplar images.
3. **Training steps**, per method: the first evaluated step where the held-out loss (smoothed over
   three evaluations) has made 90 % of its total drop: where it has flattened. A curve that reaches
   that point only at its last evaluation, cut short of the method's default by ``MAX_CURVE_STEPS``,
   has not shown that it flattened: the default step count stays.

The held-out loss is the method's plain denoising loss on the exemplars, evaluated on fixed draws of
rows, noise and timesteps that training never uses (``actionbench.training.loop.heldout_tracking``).
Curves are measured on two fixed actions (the dataset's first and last). The result is written to the
world's ``protocol.json``; the suite applies it to every run of the mini suite
(``actionbench.worlds.mini.protocol`` reads it).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from actionbench.worlds.mini.protocol import PROTOCOL_FILE

SAMPLER_REFERENCE = 50
SAMPLER_CANDIDATES = (5, 8, 10, 15, 20, 25, 30, 40)
SAMPLER_SOLVERS = ("ddim", "dpmpp_2m", "unipc")
"""The solvers rule 1 compares (``SamplerConfig.solver``), in the order a tie is broken: the reference's own first."""
SAMPLER_AGREEMENT = 0.98
LR_MULTIPLIERS = (1.0, 10.0, 100.0)
MEASURABLE_DROP = 0.01
FLAT_WITHIN = 0.10
MAX_CURVE_STEPS = 1000
EVAL_EVERY = 25
EVAL_REPEATS = 12


def trained_methods() -> list[tuple[str, str, str]]:
    """(method, its learning-rate field, its step field) of every registered method that trains: those declaring
    both ``lr_field`` and ``steps_field``, the built-ins first. ADI's tuning is its own row (``TUNING_ROW``)."""
    from actionbench.api.registry import method_classes

    return [(name, cls.lr_field, cls.steps_field) for name, cls in method_classes()
            if cls.steps_field is not None and cls.lr_field is not None]


TUNING_ROW = "adi action-different tuning"
TUNING_FIELDS = ("action_different_tune_lr", "action_different_tune_steps")  # as configs record them
"""ADI's action-different tuning: its row in the record and its (learning-rate, step) fields."""


@dataclass
class Curve:
    label: str
    lr: float
    points: list[tuple[int, float]]


@dataclass
class MethodProtocol:
    method: str  # the method whose settings these are
    settings: dict
    reason: str
    curves: list[Curve] = field(default_factory=list)
    row: str = ""  # what was measured, when not the method's own training loop


def flattened_step(points: list[tuple[int, float]]) -> int:
    """The first evaluated step whose smoothed held-out loss is within ``FLAT_WITHIN`` of the total
    drop above the lowest smoothed value (the last step if it never flattens)."""
    steps = [s for s, _ in points]
    values = [v for _, v in points]
    smoothed = [sum(values[max(0, i - 1):i + 2]) / len(values[max(0, i - 1):i + 2]) for i in range(len(values))]
    lowest, start = min(smoothed), smoothed[0]
    drop = max(start - lowest, 1e-12)
    for step, value in zip(steps, smoothed):
        if step > 0 and value - lowest <= FLAT_WITHIN * drop:
            return step
    return steps[-1]


def drops_measurably(points: list[tuple[int, float]]) -> bool:
    start = points[0][1]
    values = [v for _, v in points[1:]]
    return bool(values) and min(values) <= start * (1 - MEASURABLE_DROP) and values[-1] <= start


def chosen_steps(curves: list[list[tuple[int, float]]], default_steps: int | None, steps_field: str) -> tuple[dict, str]:
    """Rule 3 on one learning rate's curves: the step where every curve has flattened, unless a curve
    only got there at its last evaluation and was cut short of the default (then the default stays)."""
    steps = max(flattened_step(c) for c in curves)
    last = min(c[-1][0] for c in curves)
    if default_steps is not None and steps >= last and last < default_steps:
        return {}, f"not flat by step {last}, where the curves were cut: the default {default_steps} steps stay"
    return {steps_field: int(steps)}, f"flattened by step {steps} on every curve"


def choose(method: str, curves_by_lr: dict[float, list[list[tuple[int, float]]]], default_lr: float,
           lr_field: str, steps_field: str, default_steps: int | None = None) -> tuple[dict, str]:
    """Apply rules 2 and 3 to one method's curves (per learning-rate multiple, one curve per action)."""
    for multiple in sorted(curves_by_lr):
        curves = curves_by_lr[multiple]
        if all(drops_measurably(c) for c in curves):
            settings, said = chosen_steps(curves, default_steps, steps_field)
            if multiple != 1.0:
                settings[lr_field] = default_lr * multiple
            return settings, (f"held-out loss drops by >= {MEASURABLE_DROP:.0%} at x{multiple:g} the default "
                              f"learning rate; {said}")
    settings, said = chosen_steps(curves_by_lr[min(curves_by_lr)], default_steps, steps_field)
    return (settings, f"no multiple up to x{max(curves_by_lr):g} made the held-out loss drop by {MEASURABLE_DROP:.0%}: "
                      f"the default learning rate stays; {said}")


def sampler_steps(backbone, judge, prompts: list[tuple[str, str, str]], seeds: list[int],
                  solvers: tuple[str, ...] | None = None) -> tuple[tuple[str, int], dict]:
    """Rule 1 on the base model: the chosen (solver, steps), and each solver's agreement with the 50-step DDIM
    images per candidate step count (``{solver: {steps: share}}``)."""
    from actionbench.api.config import SamplerConfig
    from actionbench.training import encode_prompts, sample_images

    def readings(solver: str, steps: int) -> list[tuple[str, str]]:
        sampler = SamplerConfig(num_inference_steps=steps, solver=solver, batch_size=16)
        images = []
        for text, _, _ in prompts:
            images += sample_images(backbone, encode_prompts(backbone, [text]), seeds, sampler)
        return [tuple(r)[:2] for r in judge.predict(images)]  # pose and subject (v2's judge reads more)

    reference = readings("ddim", SAMPLER_REFERENCE)
    agreement: dict[str, dict[int, float]] = {}
    for solver in solvers or SAMPLER_SOLVERS:
        agreement[solver] = {}
        for steps in SAMPLER_CANDIDATES:
            read = readings(solver, steps)
            agreement[solver][steps] = sum(a == b for a, b in zip(read, reference)) / len(reference)
    return choose_sampler(agreement), agreement


def choose_sampler(agreement: dict[str, dict[int, float]]) -> tuple[str, int]:
    """The fewest steps meeting ``SAMPLER_AGREEMENT`` over all solvers (ties: the solver listed first); the
    reference (DDIM, 50 steps) when none does."""
    meeting = [(steps, order, solver) for order, (solver, by_steps) in enumerate(agreement.items())
               for steps, share in by_steps.items() if share >= SAMPLER_AGREEMENT]
    if not meeting:
        return "ddim", SAMPLER_REFERENCE
    steps, _, solver = min(meeting)
    return solver, int(steps)


def method_curves(backbone, dataset, method: str, lr_field: str, steps_field: str, log=print):
    """Held-out curves of one method at each learning-rate multiple, on the first and last actions."""
    import tempfile

    from actionbench.api.config import build_config
    from actionbench.api.registry import get_method
    from actionbench.training.loop import heldout_tracking

    cls = get_method(method)
    default = cls.Config().to_dict()  # as recorded: a grouped setting under its flat name
    default_lr = default[lr_field]
    steps = min(default[steps_field], MAX_CURVE_STEPS)
    actions = [dataset.actions[0], dataset.actions[-1]]
    by_lr: dict[float, list[list[tuple[int, float]]]] = {}
    curves: list[Curve] = []
    for multiple in LR_MULTIPLIERS:
        config = build_config(cls.Config, {steps_field: steps, lr_field: default_lr * multiple})
        instance = cls(backbone, config)
        with tempfile.TemporaryDirectory() as folder, heldout_tracking(EVAL_EVERY, EVAL_REPEATS) as tracker:
            for action in actions:
                started = time.process_time()
                instance.customize(action, Path(folder) / action.id)
                log(f"  {method} x{multiple:g} {action.id}: {steps} steps in {time.process_time() - started:.0f} CPU-s")
        own = [(label, points) for label, points in tracker.curves if "action-different" not in label]
        by_lr[multiple] = [points for _, points in own]
        curves += [Curve(label, default_lr * multiple, points) for label, points in own]
        if all(drops_measurably(c) for c in by_lr[multiple]):
            break  # the rule takes the smallest multiple that works: larger ones are not needed
    settings, reason = choose(method, by_lr, default_lr, lr_field, steps_field, default[steps_field])
    return MethodProtocol(method, settings, reason, curves)


def rule_text() -> str:
    return __doc__.split("The rule:")[1].split("The held-out loss")[0].strip()


def build_record(sampler: dict, methods: list[MethodProtocol], world: str, cpu_seconds: float) -> dict:
    return {
        "world": world,
        "rule": rule_text(),
        "constants": {"sampler_reference": SAMPLER_REFERENCE, "sampler_candidates": list(SAMPLER_CANDIDATES),
                      "sampler_solvers": list(SAMPLER_SOLVERS),
                      "sampler_agreement": SAMPLER_AGREEMENT, "lr_multipliers": list(LR_MULTIPLIERS),
                      "measurable_drop": MEASURABLE_DROP, "flat_within": FLAT_WITHIN,
                      "max_curve_steps": MAX_CURVE_STEPS, "eval_every": EVAL_EVERY, "eval_repeats": EVAL_REPEATS},
        "sampler": sampler,
        "rows": [{"row": m.row or m.method, "method": m.method, "settings": m.settings, "reason": m.reason,
                  "curves": [asdict(c) for c in m.curves]} for m in methods],
        "cpu_seconds": round(cpu_seconds, 1),
    }


def save_protocol(record: dict, out: Path) -> Path:
    """Write ``protocol.json`` and the curves' PNG into ``out``; returns the JSON's path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / PROTOCOL_FILE
    path.write_text(json.dumps(record, indent=1) + "\n")
    plot_curves(record, out / "protocol-curves.png")
    return path


def reapply_rule(record: dict) -> dict:
    """The record's settings and reasons derived again from its stored curves by the current rule (rules 2
    and 3): for records measured in parts (``--methods``) or before a change of the rule; no training."""
    from actionbench.api.registry import get_method

    fields = {method: (lr_field, steps_field) for method, lr_field, steps_field in trained_methods()}
    rows = []
    for row in record["rows"]:
        default = get_method(row["method"]).Config().to_dict()  # as recorded: a grouped setting's flat name
        lr_field, steps_field = TUNING_FIELDS if row["row"] == TUNING_ROW else fields[row["method"]]
        default_lr = default[lr_field]
        by_lr: dict[float, list] = {}
        for curve in row["curves"]:
            by_lr.setdefault(round(curve["lr"] / default_lr, 6), []).append([tuple(p) for p in curve["points"]])
        settings, reason = choose(row["method"], by_lr, default_lr, lr_field, steps_field, default[steps_field])
        rows.append(dict(row, settings=settings, reason=reason))
    return dict(record, rows=rows, rule=rule_text())


def merge_records(records: list[dict], world: str) -> dict:
    """One protocol from records measured in parts on the same world: the sampler rule's result must
    agree, rows are concatenated (each method once), and the rule is re-applied to every row."""
    samplers = {json.dumps(r["sampler"], sort_keys=True) for r in records}
    if len(samplers) != 1:
        raise ValueError("the parts disagree on the sampler rule's result: measure them on the same world and code")
    names = [row["row"] for r in records for row in r["rows"]]
    if len(names) != len(set(names)):
        raise ValueError(f"a row is in more than one part: {sorted(n for n in names if names.count(n) > 1)}")
    merged = dict(records[0], world=world, rows=[row for r in records for row in r["rows"]],
                  cpu_seconds=round(sum(r.get("cpu_seconds", 0.0) for r in records), 1),
                  parts=len(records))
    return reapply_rule(merged)


def plot_curves(protocol: dict, path: Path) -> Path | None:
    """The held-out curves, one panel per method (needs matplotlib: pip install "actionbench[plots]")."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = protocol["rows"]
    steps_fields = {method: steps_field for method, _, steps_field in trained_methods()}
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 2.8), squeeze=False)
    for ax, entry in zip(axes[0], rows):
        for curve in entry["curves"]:
            steps, values = zip(*curve["points"])
            ax.plot(steps, values, label=f"{curve['label'].split()[-1]} lr {curve['lr']:.0e}", lw=1)
        chosen = entry["settings"].get(TUNING_FIELDS[1] if entry["row"] == TUNING_ROW else steps_fields.get(entry["method"]))
        if chosen:
            ax.axvline(chosen, color="k", ls=":", lw=1)
        ax.set_title(entry["row"], fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("held-out denoising loss", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tuning_curves(backbone, dataset, log=print) -> MethodProtocol:
    """Rules 2 and 3 for ADI's action-different tuning: a copy of the UNet tuned on one exemplar image.
    Curves on the first exemplar of the first and the last action (no images are drawn)."""
    from actionbench.methods import adi
    from actionbench.training.loop import heldout_tracking

    config = adi.ADIConfig()
    group = config.action_different
    default_lr, steps = group.tune_lr, min(group.tune_steps, MAX_CURVE_STEPS)
    exemplars = [dataset.actions[0].exemplars[0], dataset.actions[-1].exemplars[0]]
    by_lr: dict[float, list[list[tuple[int, float]]]] = {}
    curves: list[Curve] = []
    for multiple in LR_MULTIPLIERS:
        settings = dict(adi.action_different_settings(config), tune_lr=default_lr * multiple, tune_steps=steps,
                        inference_steps=1, prompts=group.prompts[:1])
        with heldout_tracking(EVAL_EVERY, EVAL_REPEATS) as tracker:
            for exemplar in exemplars:
                adi.tune_and_generate(backbone, [exemplar.image()], settings, seeds=[0])
        by_lr[multiple] = [points for _, points in tracker.curves]
        curves += [Curve(f"tuning {e.action_id}/{e.index}", default_lr * multiple, points)
                   for e, (_, points) in zip(exemplars, tracker.curves)]
        log(f"  adi action-different tuning x{multiple:g}: {len(tracker.curves)} curves")
        if all(drops_measurably(c) for c in by_lr[multiple]):
            break
    settings, reason = choose("adi", by_lr, default_lr, *TUNING_FIELDS, group.tune_steps)
    return MethodProtocol("adi", settings, reason, curves, row=TUNING_ROW)



EVERYDAY_PROMPTS = (("man", "stand"), ("woman", "walk"), ("cat", "stand"), ("dog", "run"), ("girl", "wave"),
                    ("monkey", "jump"), ("police_officer", "kneel"), ("panda", "lie"))
"""The base model's trained prompts the sampler rule reads: subject and everyday pose, 8 seeds each."""


def run_protocol(backbone_name: str, dataset_name: str, judge_name: str, out: Path, methods=None,
                 log=print, rows_from: dict | None = None) -> Path:
    """Measure rules 1-3 on a mini world and write ``protocol.json`` (and the curves' PNG) to ``out``;
    ``rows_from`` (a protocol record): measure rule 1 only and keep that record's method rows."""
    import torch

    from actionbench.backbone import load_backbone
    from actionbench.dataset import load_dataset
    from actionbench.api.registry import get_evaluator
    from actionbench.worlds.mini.captions import POSE_WORDS

    torch.set_num_threads(1)
    backbone, dataset = load_backbone(backbone_name), load_dataset(dataset_name)
    judge = get_evaluator(judge_name)(dataset)
    prompts = [(f"{dataset.subject(s).name} {POSE_WORDS[p]}", p, s) for s, p in EVERYDAY_PROMPTS]
    started = time.process_time()
    (solver, steps), agreement = sampler_steps(backbone, judge, prompts, list(range(8)))
    for name, by_steps in agreement.items():
        log(f"sampler {name}, agreement with 50 DDIM steps: " + ", ".join(f"{k}: {v:.3f}" for k, v in by_steps.items()))
    log(f"sampler: {steps} {solver} steps; {time.process_time() - started:.0f} CPU-s")
    rows = []
    for method, lr_field, steps_field in () if rows_from else trained_methods():
        if methods and method not in methods:
            continue
        rows.append(method_curves(backbone, dataset, method, lr_field, steps_field, log=log))
        log(f"{method}: {rows[-1].settings} ({rows[-1].reason})")
    if not rows_from and (not methods or "adi" in methods):
        rows.append(tuning_curves(backbone, dataset, log=log))
        log(f"{TUNING_ROW}: {rows[-1].settings} ({rows[-1].reason})")
    sampler = {"num_inference_steps": steps, "solver": solver,
               "agreement_with_50_steps": {name: {str(k): v for k, v in by_steps.items()}
                                           for name, by_steps in agreement.items()},
               "prompts": [p for p, _, _ in prompts], "seeds": 8}
    record = build_record(sampler, rows, f"{backbone_name} + {dataset_name} + {judge_name}",
                          time.process_time() - started)
    if rows_from:
        record = dict(record, rows=rows_from["rows"], cpu_seconds=record["cpu_seconds"],
                      rows_measured_before={"cpu_seconds": rows_from.get("cpu_seconds"),
                                            "sampler": rows_from.get("sampler")})
    return save_protocol(record, out)
