"""Mask selectivity: how much of the context's and of the action's gradient direction ADI's masks keep.

ADI's masks (``methods/adi.py``) are meant to drop the identifier channels that carry the exemplars'
context and keep those that carry the action. A world whose renders are exact can say whether they do,
before any ADI row is run, without looking at a benchmark score:

* the *context direction* of an exemplar is ``g(exemplar) - g(the same person, pose, build and seed with
  no attribute on a plain background)``: what the identifier gradient gains from the context alone;
* the *action direction* is ``g(exemplar) - g(the world's oracle action-different sample)``: the same
  person and context in an everyday pose, so what the gradient gains from the pose alone;
* a mask ``m`` over the L x D identifier channels keeps ``sum(m d^2) / sum(d^2)`` of a direction's
  energy; divided by the mask's kept fraction ``mean(m)`` this is 1.0 for a mask that picks channels at
  random, below 1 where it avoids the direction, above 1 where it seeks it out.

ADI wants the context ratio low and the action ratio at least 1. Every gradient here is taken with the
same noise and timestep for all rows of a draw, on the exemplar's own caption, as ADI's step does.
The action-different sample is the oracle (the best case the generated samples approximate).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

GROUPS = ("anchor", "context_different", "action_different", "context_free", "no_attributes", "no_background")
"""The rows of a gradient draw: the exemplar, another exemplar of its action (ADI's c̄), the oracle action-different
sample (ADI's ā), the exemplar without its context, without its attributes only, without its background only."""

THRESHOLD = {"context": 0.6, "action": 1.0}
"""What selectivity ADI needs, fixed before any mask was measured: the merged mask keeps at most 0.6 of
the context direction's energy per kept fraction and at least 1.0 of the action direction's."""


@dataclass(frozen=True)
class MaskPreset:
    """One rule for setting ADI's thresholds: ADI's config fields and how many noise draws a mask averages."""

    name: str
    settings: dict
    draws_per_mask: int = 1
    note: str = ""


PRESETS = (
    MaskPreset("paper", {"mask_threshold": "token_quantile", "beta": 0.5}, 1,
               "the median over each layer token's D channels (our reading of the paper; ADI's default)"),
    MaskPreset("global_median", {"mask_threshold": "global_quantile", "beta": 0.5}, 1,
               "one median over all L x D channels of a sample (magnitude across layers counts)"),
    MaskPreset("token_q25", {"mask_threshold": "token_quantile", "beta": 0.25}, 1,
               "a stricter percentile: the context mask keeps a quarter, the action mask three quarters"),
    MaskPreset("paper_4_draws", {"mask_threshold": "token_quantile", "beta": 0.5}, 4,
               "the paper's rule on gradients averaged over 4 noise draws (less noise in the differences)"),
)


def kept_ratio(mask: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Per sample, the share of ``direction``'s energy that ``mask`` keeps, over the share of channels it keeps.

    ``mask`` and ``direction`` are (B, L, D); returns (B,). 1.0: no better than random; a mask keeping
    nothing, or a direction with no energy, gives NaN (the sample says nothing).
    """
    m = mask.float().flatten(1)
    energy = direction.float().pow(2).flatten(1)
    share = (m * energy).sum(1) / energy.sum(1)
    return share / m.mean(1)


def selectivity(cfg, grads: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """For the context mask, the action mask and both merged (ADI's ``adi_mask`` with ``cfg``), the mean
    ``kept_ratio`` of the context and the action direction, and the mean kept fraction.

    ``grads`` holds (B, L, D) gradients: ``anchor``, ``context_different`` (another exemplar of the action),
    ``action_different`` (same person and context, another pose) and ``context_free`` (the anchor without
    its context).
    """
    from dataclasses import replace

    from actionbench.methods.adi import adi_mask

    g = grads["anchor"]
    directions = {"context": g - grads["context_free"], "action": g - grads["action_different"]}
    masks = {
        "context_mask": adi_mask(replace(cfg, use_action_mask=False), g, grads["context_different"], None),
        "action_mask": adi_mask(replace(cfg, use_context_mask=False), g, None, grads["action_different"]),
        "both": adi_mask(cfg, g, grads["context_different"], grads["action_different"]),
    }
    return {name: {"kept_fraction": float(m.float().mean()),
                   **{d: float(torch.nanmean(kept_ratio(m, v))) for d, v in directions.items()}}
            for name, m in masks.items()}


def meets_threshold(row: dict[str, float]) -> bool:
    return row["context"] <= THRESHOLD["context"] and row["action"] >= THRESHOLD["action"]


def exemplar_images(world, action_id: str, size: int) -> dict[str, list]:
    """The images of each signature exemplar of ``action_id``, one list per group of ``GROUPS`` (the oracle sample
    in the first everyday pose; "without the background" puts the figure on the world's first plain background;
    "without its context" drops what the signature holds: the attributes, and the background where it has a type)."""
    from actionbench.worlds.mini.exemplars import EXEMPLARS_PER_ACTION, exemplar_spec, render_exemplar, render_oracle
    from actionbench.worlds.synthetic import render

    shown = [i for i in range(1, EXEMPLARS_PER_ACTION + 1) if exemplar_spec(action_id, i, world)["signature"]]
    shared_background = world.signature(action_id).background_type is not None
    images: dict[str, list] = {name: [] for name in GROUPS + ("template",)}
    for k, i in enumerate(shown):
        spec = exemplar_spec(action_id, i, world)
        images["anchor"].append(render_exemplar(action_id, i, size, world).image)
        images["context_different"].append(render_exemplar(action_id, shown[(k + 1) % len(shown)], size, world).image)
        images["action_different"].append(render_oracle(action_id, i, 1, size, world)[0])
        # the context is what the exemplars share: attributes and background type (v2), attributes alone (v3,
        # where each exemplar's background is its own and so no part of the signature)
        free_background = world.plain_backgrounds[0] if shared_background else spec["background"]
        for name, attributes, background in (
                ("context_free", (), free_background),
                ("no_attributes", (), spec["background"]),
                ("no_background", tuple(spec["attributes"]), world.plain_backgrounds[0])):
            images[name].append(render(spec["look"], spec["pose"], size=size, seed=spec["seed"], background=background,
                                       attributes=attributes, build=spec["build"]).image)
        images["template"].append(spec["template"])
    return images




def gradients(backbone, identifiers: torch.Tensor, token: str, images: dict[str, list], draws: int,
              generator: torch.Generator) -> list[dict[str, torch.Tensor]]:
    """Per noise draw, the identifier gradient of every group's rows (B, L, D), one shared eps and t per draw."""
    from actionbench.layerwise import layerwise_processors
    from actionbench.methods.adi import per_sample_gradients, shared_draw
    from actionbench.training import ExemplarSet, draw_noise

    templates = images["template"]
    latents = torch.cat([ExemplarSet.from_images(backbone, images[name], templates).latent_mean for name in GROUPS])
    captions = [t.replace("{}", token) for t in templates] * len(GROUPS)
    out = []
    with layerwise_processors(backbone.unet):
        for _ in range(draws):
            draw = draw_noise(backbone, latents[: len(templates)], generator)
            _, grads = per_sample_gradients(backbone, identifiers, token, latents, captions,
                                            shared_draw(draw, len(GROUPS)), len(GROUPS))
            out.append(dict(zip(GROUPS, grads)))
    return out


def energies(per_draw: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Mean squared norm of each direction's gradient (context, attributes, background, action), per sample and
    draw: how loudly each part of an exemplar speaks to the identifiers."""
    pairs = {"context": "context_free", "attributes": "no_attributes", "background": "no_background",
             "action": "action_different"}
    return {name: float(torch.stack([(d["anchor"] - d[other]).float().pow(2).flatten(1).sum(1).mean()
                                     for d in per_draw]).mean()) for name, other in pairs.items()}


def preset_selectivity(cfg, preset: MaskPreset, per_draw: list[dict[str, torch.Tensor]]) -> dict[str, dict]:
    """``selectivity`` under ``preset``: masks from gradients averaged over ``draws_per_mask`` consecutive draws,
    then the mean over the resulting masks."""
    from dataclasses import replace

    cfg = replace(cfg, **preset.settings)
    n = preset.draws_per_mask
    chunks = [per_draw[i:i + n] for i in range(0, len(per_draw) - n + 1, n)]
    rows = [selectivity(cfg, {k: torch.stack([d[k] for d in chunk]).mean(0) for k in chunk[0]}) for chunk in chunks]
    return {mask: {key: sum(r[mask][key] for r in rows) / len(rows) for key in rows[0][mask]} for mask in rows[0]}


def diagnose(world, backbone, dataset, adi_cfg, pplus_cfg, stages: tuple[str, ...] = ("untrained", "trained"),
             draws: int = 8, seed: int = 0, log: Callable[[str], None] = print) -> dict:
    """The selectivity of every preset's masks, per action and overall, on the untrained identifiers and after
    P+ training (``pplus_cfg``: P+ at ADI's anchors and steps)."""
    import tempfile
    from pathlib import Path

    from actionbench.layerwise import num_layers
    from actionbench.methods.p_plus import PPlus
    from actionbench.training import fixed_generator, placeholder_for, word_embedding

    from actionbench.errors import ConfigError

    most = max(p.draws_per_mask for p in PRESETS)
    if draws < most:
        raise ConfigError(f"--draws {draws}: the presets average up to {most} draws per mask; give --draws {most} or more")
    size = int(dataset.extra["size"])
    record: dict = {"world": world.name, "draws": draws, "seed": seed, "threshold": THRESHOLD,
                    "presets": {p.name: {"settings": p.settings, "draws_per_mask": p.draws_per_mask, "note": p.note}
                                for p in PRESETS},
                    "pplus": {"train_steps": pplus_cfg.train_steps, "batch_size": pplus_cfg.batch_size,
                              "learning_rate": pplus_cfg.learning_rate},
                    "stages": {}}
    for stage in stages:
        per_action: dict = {}
        energy: dict = {}
        for action in dataset.actions:
            token = placeholder_for(action.id, "p_plus")
            if stage == "trained":
                with tempfile.TemporaryDirectory() as tmp:
                    artifact = PPlus(backbone, pplus_cfg).customize(action, Path(tmp))
                    identifiers = artifact.tensors["layer_embeddings"].float()
            else:
                init = word_embedding(backbone, adi_cfg.initializer_word).to(backbone.device)
                identifiers = init[None].repeat(num_layers(backbone), 1)
            per_draw = gradients(backbone, identifiers, token, exemplar_images(world, action.id, size), draws,
                                 fixed_generator(seed))
            per_action[action.id] = {p.name: preset_selectivity(adi_cfg, p, per_draw) for p in PRESETS}
            energy[action.id] = energies(per_draw)
            both, e = per_action[action.id]["paper"]["both"], energy[action.id]
            log(f"{stage} {action.id}: paper rule, both masks: context {both['context']:.2f}, "
                f"action {both['action']:.2f}, kept {both['kept_fraction']:.2f}; energy / action's: context "
                f"{e['context'] / e['action']:.2f}, attributes {e['attributes'] / e['action']:.2f}, "
                f"background {e['background'] / e['action']:.2f}")
        overall = {p.name: {mask: {key: sum(a[p.name][mask][key] for a in per_action.values()) / len(per_action)
                                   for key in ("kept_fraction", "context", "action")}
                            for mask in ("context_mask", "action_mask", "both")} for p in PRESETS}
        mean_energy = {k: sum(e[k] for e in energy.values()) / len(energy) for k in next(iter(energy.values()))}
        record["stages"][stage] = {"per_action": per_action, "overall": overall, "energy": energy,
                                   "energy_over_action": {k: v / mean_energy["action"] for k, v in mean_energy.items()},
                                   "meets": {p: meets_threshold(overall[p]["both"]) for p in overall}}
    return record


def format_table(record: dict) -> str:
    """The overall selectivity per stage and preset, as a Markdown table."""
    lines = ["| identifiers | preset | mask | kept fraction | context kept / k | action kept / k | meets |",
             "|---|---|---|---:|---:|---:|---|"]
    for stage, body in record["stages"].items():
        for preset, masks in body["overall"].items():
            for mask, row in masks.items():
                meets = ("yes" if meets_threshold(row) else "no") if mask == "both" else ""
                lines.append(f"| {stage} | {preset} | {mask} | {row['kept_fraction']:.3f} | {row['context']:.2f} | "
                             f"{row['action']:.2f} | {meets} |")
    lines += ["", "| identifiers | context / action energy | attributes / action | background / action |",
              "|---|---:|---:|---:|"]
    for stage, body in record["stages"].items():
        r = body["energy_over_action"]
        lines.append(f"| {stage} | {r['context']:.2f} | {r['attributes']:.2f} | {r['background']:.2f} |")
    return "\n".join(lines)
