"""A quick check of a mini model (any world, any checkpoint): samples on everyday prompts, with and
without named attributes and background types, a contact sheet, and rough readings.

The check reports, next to the sheet (which is the thing to look at):

* the v1 judge's pose and subject on every sample (it knows the 19 poses and the 23 subjects, but
  was fitted on figures without attributes, so a cap or a robe may confuse it);
* for each named attribute, the share of pixels near that attribute's colour (each attribute has a
  colour no other attribute uses, ``synthetic.WEARABLES``), against the same prompt without it;
* with a v2 judge (``v2_judge``: its folder), what it reads: the asked pose, subject, each asked
  attribute and background type, and attributes it reads that were not asked for.

``actionbench mini check --backbone mini-v2:FOLDER`` writes ``check-<steps>.png`` and ``.json`` there.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np


class CheckPrompt(NamedTuple):
    text: str
    subject: str
    pose: str
    attributes: tuple[str, ...] = ()
    background_type: str | None = None
    bare: str | None = None  # the trained prompt without the context, to compare colours with


# The v1 docs' trained prompts (docs/mini.md: 52/64 poses, 64/64 subjects on the shipped v1 model)
TRAINED_PROMPTS = (
    CheckPrompt("a cat standing", "cat", "stand"),
    CheckPrompt("a dog walking", "dog", "walk"),
    CheckPrompt("a man waving", "man", "wave"),
    CheckPrompt("a woman running", "woman", "run"),
    CheckPrompt("a photo of a panda kneeling", "panda", "kneel"),
    CheckPrompt("a tiger jumping", "tiger", "jump"),
    CheckPrompt("a rabbit lying down", "rabbit", "lie"),
    CheckPrompt("Barack Obama with arms crossed", "barack_obama", "arms_crossed"),
)
# The same subjects and poses, each asked for attributes and background types (every attribute and type once)
CONTEXT_PROMPTS = (
    CheckPrompt("a cat standing wearing a cap", "cat", "stand", ("cap",), None, "a cat standing"),
    CheckPrompt("a dog walking in a uniform", "dog", "walk", ("uniform",), None, "a dog walking"),
    CheckPrompt("a man waving on a beach", "man", "wave", (), "beach", "a man waving"),
    CheckPrompt("a woman running in sportswear in a gym", "woman", "run", ("sportswear",), "gym", "a woman running"),
    CheckPrompt("a photo of a panda kneeling in a robe on a mat", "panda", "kneel", ("robe", "mat"), None,
                "a photo of a panda kneeling"),
    CheckPrompt("a tiger jumping wearing a scarf outdoors", "tiger", "jump", ("scarf",), "outdoors", "a tiger jumping"),
    CheckPrompt("a rabbit lying down beside a stool in a room", "rabbit", "lie", ("stool",), "room",
                "a rabbit lying down"),
    CheckPrompt("Barack Obama with arms crossed wearing a headband in a studio", "barack_obama", "arms_crossed",
                ("headband",), "studio", "Barack Obama with arms crossed"),
)
COLOUR_TOLERANCE = 48.0  # RGB distance that counts as "the attribute's colour"
CELL = 96  # pixels per sample on the sheet (32 px scaled x3, nearest neighbour)
LABEL_WIDTH = 330


def colour_share(image, rgb: Sequence[int], tolerance: float = COLOUR_TOLERANCE) -> float:
    """The share of an image's pixels within ``tolerance`` (RGB distance) of ``rgb``."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    return float(np.mean(np.linalg.norm(pixels - np.asarray(rgb, dtype=np.float64), axis=-1) < tolerance))


def sample_prompts(backbone, prompts: Sequence[str], seeds: Sequence[int], steps: int = 12,
                   guidance: float = 4.0) -> dict[str, list]:
    """prompt -> one image per seed (DDIM ``steps``, guidance ``guidance``: the mini docs' sampler)."""
    from actionbench.api.config import SamplerConfig
    from actionbench.training import encode_prompts, sample_images

    sampler = SamplerConfig(num_inference_steps=steps, guidance_scale=guidance, batch_size=len(seeds))
    return {p: sample_images(backbone, encode_prompts(backbone, [p]), list(seeds), sampler) for p in prompts}


def read_samples(images: dict[str, list], checks: Sequence[CheckPrompt], v2_judge: str | Path | None = None) -> list[dict]:
    """Per prompt: the v1 judge's pose and subject hits, each named attribute's colour share against the bare
    prompt's, and (with ``v2_judge``, a judge folder) the v2 judge's readings (``v2_readings``)."""
    from actionbench.worlds.mini.judge import MiniV1Judge
    from actionbench.worlds.synthetic import WEARABLES

    judge = MiniV1Judge(None)
    second = None
    if v2_judge is not None:
        from actionbench.worlds.mini.judge_v2 import MiniV2Judge

        second = MiniV2Judge(None, folder=str(v2_judge))
    rows = []
    for check in checks:
        readings = judge.predict(images[check.text])
        row = {"prompt": check.text, "samples": len(readings),
               "v1_judge_pose_hits": sum(pose == check.pose for pose, _ in readings),
               "v1_judge_subject_hits": sum(subject == check.subject for _, subject in readings),
               "v1_judge_poses": [pose for pose, _ in readings]}
        for attribute in check.attributes:
            colour = WEARABLES[attribute].colour
            row[f"{attribute}_colour_share"] = round(float(np.mean([colour_share(im, colour) for im in images[check.text]])), 4)
            if check.bare:
                row[f"{attribute}_colour_share_without"] = round(
                    float(np.mean([colour_share(im, colour) for im in images[check.bare]])), 4)
        if second is not None:
            row["v2_judge"] = v2_readings(second.predict(images[check.text]), check)
        rows.append(row)
    return rows


def v2_readings(readings: Sequence, check: CheckPrompt) -> dict:
    """Hits of the v2 judge's readings against what ``check`` asked: pose, subject, each attribute, the background
    type (none when not asked), and the images with an attribute read that was not asked for."""
    from actionbench.worlds.mini.judge_v2 import NO_TYPE

    return {"pose_hits": sum(r.pose == check.pose for r in readings),
            "subject_hits": sum(r.subject == check.subject for r in readings),
            "attribute_hits": {a: sum(a in r.attributes for r in readings) for a in check.attributes},
            "background_hits": sum(r.background_type == (check.background_type or NO_TYPE) for r in readings),
            "unasked_attribute_images": sum(bool(set(r.attributes) - set(check.attributes)) for r in readings)}


def contact_sheet(images: dict[str, list], rows: list[dict], title: str):
    """Prompts as rows (with the readings), seeds as columns, each sample scaled x3 without smoothing."""
    from PIL import Image, ImageDraw

    columns = max(len(v) for v in images.values())
    top = 18
    sheet = Image.new("RGB", (LABEL_WIDTH + CELL * columns, top + CELL * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 3), title, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        y = top + r * CELL
        lines = _wrap(row["prompt"], 52) + [f"v1 judge: pose {row['v1_judge_pose_hits']}/{row['samples']}, "
                                            f"subject {row['v1_judge_subject_hits']}/{row['samples']}"]
        lines += [f"{k.split('_')[0]} colour {row[k]:.3f} vs {row.get(k + '_without', float('nan')):.3f} without"
                  for k in row if k.endswith("_colour_share")]
        for i, line in enumerate(lines):
            draw.text((4, y + 4 + 12 * i), line, fill=(0, 0, 0))
        for c, image in enumerate(images[row["prompt"]]):
            sheet.paste(image.convert("RGB").resize((CELL, CELL), Image.NEAREST), (LABEL_WIDTH + c * CELL, y))
    return sheet


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line]


def check_model(backbone: str, out: str | Path | None = None, seeds: int = 8, steps: int = 12,
                guidance: float = 4.0, v2_judge: str | Path | None = None, log=print) -> dict:
    """Sample ``backbone`` on ``TRAINED_PROMPTS`` and ``CONTEXT_PROMPTS`` (``seeds`` seeds each), read the samples
    (``read_samples``, with the v2 judge in folder ``v2_judge`` too when given) and write ``check-<steps>.png``
    and ``check-<steps>.json`` into ``out`` (default: the backbone's folder). Returns the record."""
    import torch

    from actionbench.backbone import load_backbone
    from actionbench.worlds.mini.folders import mini_folder

    torch.set_num_threads(1)
    model = load_backbone(backbone)
    trained_steps = model.extra.get("steps", "?")
    checks = TRAINED_PROMPTS + CONTEXT_PROMPTS
    images = sample_prompts(model, [c.text for c in checks], range(seeds), steps, guidance)
    rows = read_samples(images, checks, v2_judge)
    folder = Path(out) if out is not None else mini_folder(backbone)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"check-{trained_steps}"
    title = f"{backbone} ({trained_steps} steps): DDIM {steps}, guidance {guidance}, seeds 0-{seeds - 1}"
    contact_sheet(images, rows, title).save(stem.with_suffix(".png"))
    trained = rows[:len(TRAINED_PROMPTS)]
    record = {"backbone": backbone, "steps": trained_steps, "sampler": {"ddim_steps": steps, "guidance": guidance},
              "seeds": seeds, "trained_prompts_v1_judge_pose_hits": sum(r["v1_judge_pose_hits"] for r in trained),
              "trained_prompts_v1_judge_subject_hits": sum(r["v1_judge_subject_hits"] for r in trained),
              "trained_prompt_samples": sum(r["samples"] for r in trained), "prompts": rows,
              "sheet": str(stem.with_suffix(".png"))}
    if v2_judge is not None:
        record["v2_judge"] = {"folder": str(v2_judge), **_v2_totals(rows)}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    for row in rows:
        colours = ", ".join(f"{k.split('_')[0]} {row[k]:.3f} (without {row.get(k + '_without', float('nan')):.3f})"
                            for k in row if k.endswith("_colour_share"))
        log(f"{row['prompt']:<62} pose {row['v1_judge_pose_hits']}/{row['samples']}  "
            f"subject {row['v1_judge_subject_hits']}/{row['samples']}" + (f"  {colours}" if colours else ""))
    log(f"trained prompts, v1 judge: pose {record['trained_prompts_v1_judge_pose_hits']}/"
        f"{record['trained_prompt_samples']}, subject {record['trained_prompts_v1_judge_subject_hits']}/"
        f"{record['trained_prompt_samples']}; wrote {record['sheet']}")
    if v2_judge is not None:
        totals = record["v2_judge"]
        log("v2 judge: " + ", ".join(f"{k.replace('_', ' ')} {v[0]}/{v[1]}" for k, v in totals.items() if k != "folder"))
    return record


def _v2_totals(rows: list[dict]) -> dict:
    """The v2 judge's hits summed: pose and subject on the trained prompts, pose and subject on the context prompts,
    asked attributes and background types, and asked attributes on animal subjects ([hits, samples] each)."""
    from actionbench.worlds.synthetic import SUBJECT_LOOKS

    trained, context = rows[:len(TRAINED_PROMPTS)], rows[len(TRAINED_PROMPTS):]

    def total(rows, key):
        return [sum(r["v2_judge"][key] for r in rows), sum(r["samples"] for r in rows)]

    def attributes(checks_rows):
        return [sum(sum(r["v2_judge"]["attribute_hits"].values()) for _, r in checks_rows),
                sum(r["samples"] * len(c.attributes) for c, r in checks_rows)]

    pairs = list(zip(CONTEXT_PROMPTS, context))
    animals = [(c, r) for c, r in pairs if SUBJECT_LOOKS[c.subject].species != "human"]
    asked_type = [r for c, r in pairs if c.background_type]
    return {"trained_pose": total(trained, "pose_hits"), "trained_subject": total(trained, "subject_hits"),
            "context_pose": total(context, "pose_hits"), "context_subject": total(context, "subject_hits"),
            "asked_attributes": attributes(pairs), "asked_attributes_on_animals": attributes(animals),
            "asked_background_types": total(asked_type, "background_hits"),
            "trained_unasked_attribute_images": total(trained, "unasked_attribute_images")}
