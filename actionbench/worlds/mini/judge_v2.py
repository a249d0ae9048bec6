"""The mini v2 judge: pose, subject identity, each attribute and the background type of a 32x32 image.

One small CNN (v1's six conv blocks, ``judge.JudgeNet``'s shape) with four heads:

* pose: the 19 poses (8 actions + 11 everyday ones); ``action_ok`` = predicted pose == target action;
* subject: the 23 subjects + "person" (the generic exemplar people); ``subject_ok`` = predicted identity
  == target subject (the paper's measure: identity only, whatever the figure wears);
* attributes: one yes/no logit per attribute (uniform, robe, sportswear, cap, headband, scarf, mat, stool);
* background type: room, beach, gym, studio, outdoors, or "none" (v1's plain and random backgrounds).

Fitted as v1's judge is: on fresh v2 renders with their true labels (attributes and background types drawn
as the world's training sampler draws them) plus the same renders passed through the v2 base model with
SDEdit (``lab.judge_fit.through_model``), so it reads through the generator's artefacts without ever seeing an
unlabelled image. Held-out accuracy per head, on renders with other seeds, clean and through the model,
is recorded in ``judge.json`` (``heldout``) and in ``describe()`` of every result.

Per image the judge also says whether the image shows its target action's *context signature*
(``leak``: at least one of the signature's attributes, or its background type; the protocol's prompts
ask for none of them, so any shown element is a leak) and ``total_clean`` (action right, identity right,
no leak). Both are per-image metrics (``Evaluator.per_image_metrics``): results summarise them with the
same clustered intervals as action, subject and total.

``actionbench mini judge --world v2 --backbone mini-v2:FOLDER --out FOLDER`` (the lab's ``judge_v2_fit``) refits it;
this module only loads and runs the network.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from actionbench.api.evaluator import Evaluator, JudgeRequest, Judgment, image_of
from actionbench.worlds.mini.family import judge_class_name
from actionbench.worlds.mini.folders import JUDGE_META, JUDGE_WEIGHTS, shipped_dir
from actionbench.worlds.mini.judge import conv_features, to_tensor
from actionbench.worlds.mini.world import (MINI_V2, MINI_V3, MINI_V3B, MINI_V3C, MINI_V3P, MINI_V3Q, MINI_V3R,
                                           MINI_V3S, WorldSpec)

PERSON = "person"  # the subject class of the generic exemplar people
NO_TYPE = "none"  # the background class of v1's plain and random backgrounds


class Classes(NamedTuple):
    """The label names of each head, in logit order (recorded in ``judge.json``)."""

    poses: list[str]
    subjects: list[str]
    attributes: list[str]
    backgrounds: list[str]

    @classmethod
    def of_world(cls) -> "Classes":
        from actionbench.worlds.mini.captions import world_poses
        from actionbench.worlds.synthetic import ATTRIBUTES, BACKGROUND_TYPES, SUBJECT_IDS

        return cls(list(world_poses()), list(SUBJECT_IDS) + [PERSON], list(ATTRIBUTES),
                   list(BACKGROUND_TYPES) + [NO_TYPE])


class Reading(NamedTuple):
    """What the judge reads in one image."""

    pose: str
    subject: str
    attributes: tuple[str, ...]  # in ``Classes.attributes`` order
    background_type: str  # a background type, or ``NO_TYPE``


def signature_leak(reading: Reading, signature: Mapping) -> bool:
    """Whether ``reading`` shows an element of ``signature`` ({"attributes": [...], "background_type": ...}):
    one of its attributes, or its background type (a signature without one, as v3's: its attributes only)."""
    return (any(a in signature["attributes"] for a in reading.attributes)
            or (signature["background_type"] is not None and reading.background_type == signature["background_type"]))


class ContextJudgeNet(nn.Module):
    """Six 3x3 conv blocks (32 -> 8 pixels), mean+max pooling, a linear head per label (as v1's ``JudgeNet``)."""

    def __init__(self, classes: Classes, width: int = 32):
        super().__init__()

        w = width
        self.features = conv_features(width)
        self.pose = nn.Linear(8 * w, len(classes.poses))
        self.subject = nn.Linear(8 * w, len(classes.subjects))
        self.attributes = nn.Linear(8 * w, len(classes.attributes))
        self.background = nn.Linear(8 * w, len(classes.backgrounds))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.features(x)
        h = torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1)
        return self.pose(h), self.subject(h), self.attributes(h), self.background(h)


@torch.no_grad()
def predict_indices(net: ContextJudgeNet, x: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, ...]:
    """Per image: pose index, subject index, attribute yes/no (N, 8) and background index."""
    out: list[list[np.ndarray]] = [[], [], [], []]
    for start in range(0, len(x), batch_size):
        pose, subject, attributes, background = net(x[start:start + batch_size])
        for column, value in zip(out, (pose.argmax(1), subject.argmax(1), attributes > 0, background.argmax(1))):
            column.append(value.numpy())
    return tuple(np.concatenate(column) for column in out)


def readings(indices: tuple[np.ndarray, ...], classes: Classes) -> list[Reading]:
    """``predict_indices`` as label names."""
    pose, subject, attributes, background = indices
    return [Reading(classes.poses[p], classes.subjects[s], tuple(a for a, on in zip(classes.attributes, row) if on),
                    classes.backgrounds[b]) for p, s, row, b in zip(pose, subject, attributes, background)]


def missing_judge_files(folder: str | Path) -> list[str]:
    """The judge files (weights, record) that ``folder`` lacks; empty when a judge can load from it."""
    return [n for n in (JUDGE_WEIGHTS, JUDGE_META) if not (Path(folder) / n).is_file()]


def load_v2_judge_net(folder: str | Path | None = None) -> tuple[ContextJudgeNet, dict]:
    """The v2 judge network and its record from ``folder`` (default: the shipped one)."""
    from safetensors.torch import load_file

    folder = Path(folder) if folder is not None else shipped_dir(MINI_V2.name)
    meta = json.loads((folder / JUDGE_META).read_text())
    net = ContextJudgeNet(Classes(**meta["classes"]), int(meta["width"]))
    net.load_state_dict({k: v.float() for k, v in load_file(str(folder / JUDGE_WEIGHTS)).items()})
    return net.eval(), meta


def signature_table(dataset, world: WorldSpec = MINI_V2) -> dict[str, dict]:
    """action -> {"attributes", "background_type"}: the dataset's signatures (``extra["signatures"]``), else the world's."""
    stored = (getattr(dataset, "extra", None) or {}).get("signatures")
    if stored:
        return {a: {"attributes": list(s["attributes"]), "background_type": s["background_type"]} for a, s in stored.items()}
    return {s.action: {"attributes": list(s.attributes), "background_type": s.background_type} for s in world.signatures}


class MiniV2Judge(Evaluator):
    """Judge of the mini world v2: pose, identity, attributes and background type; ``leak`` and ``total_clean``.

    Options: ``folder`` (a folder with judge.safetensors + judge.json; default the shipped ``actionbench/data/mini-v2``).
    """

    name = "mini-v2"
    VERSION = "1"
    per_image_metrics = ("leak", "total_clean")
    world = MINI_V2
    LEAK_RULE = ("the image shows at least one attribute or the background type of the target action's signature "
                 "(the protocol's prompts ask for none of them)")

    def __init__(self, dataset, device: str = "cpu", **options):
        super().__init__(dataset, device, **options)
        self._net = None
        self._meta = None

    def _folder(self) -> Path:
        return Path(self.options["folder"]) if self.options.get("folder") else shipped_dir(self.world.name)

    def check(self) -> None:
        from actionbench.worlds.mini.folders import ShippedDataError

        folder = self._folder()
        missing = missing_judge_files(folder)
        if missing:
            raise ShippedDataError(f"the {self.name} judge has no {' and '.join(missing)} in {folder}; fit one with "
                                   "`actionbench mini judge --world v2 --backbone mini-v2:FOLDER --out FOLDER` and "
                                   "pass it as a judge option folder=FOLDER")

    def _load(self) -> ContextJudgeNet:
        if self._net is None:
            self.check()
            self._net, self._meta = load_v2_judge_net(self._folder())
        return self._net

    def predict(self, images: Sequence) -> list[Reading]:
        """What the judge reads in each image (PIL images or a uint8 (N, H, W, 3) array)."""
        net = self._load()
        images = images if isinstance(images, np.ndarray) else list(images)
        return readings(predict_indices(net, to_tensor(images)), Classes(**self._meta["classes"]))

    def signatures(self) -> dict[str, dict]:
        return signature_table(self.dataset, self.world)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        from actionbench.errors import ConfigError

        table = self.signatures()
        unknown = sorted({r.action_id for r in requests} - set(table))
        if unknown:
            raise ConfigError(f"the {self.name} judge has no context signature for {', '.join(unknown)}; it judges the "
                              f"{self.world.name} actions ({', '.join(table)})")
        out = []
        for request, reading in zip(requests, self.predict([image_of(r) for r in requests])):
            action_ok, subject_ok = reading.pose == request.action_id, reading.subject == request.subject_id
            leak = signature_leak(reading, table[request.action_id])
            out.append(Judgment(request.unit_id, action_ok, subject_ok, {
                "pose": reading.pose, "subject": reading.subject, "attributes": list(reading.attributes),
                "background_type": reading.background_type, "leak": leak,
                "total_clean": action_ok and subject_ok and not leak}))
        return out

    def describe(self) -> dict:
        self._load()
        out = super().describe()
        clean = self._meta["heldout"]["clean"]
        # "model" is the short label the leaderboard groups and prints by; the numbers behind it follow
        out["model"] = (f"CNN, held-out {100 * clean['pose_accuracy']:.1f}% pose / "
                        f"{100 * clean['subject_accuracy']:.1f}% subject / "
                        f"{100 * clean['background_accuracy']:.1f}% background")
        out["world"] = self.world.name
        out["signatures"] = self.signatures()
        out["leak_rule"] = self.LEAK_RULE
        out["heldout"] = self._meta["heldout"]
        out["fit"] = {k: self._meta.get(k) for k in ("classifier", "seed", "train_images", "through_model", "reproduce")}
        return out


class MiniV3Judge(MiniV2Judge):
    """Judge of the mini world v3: v2's network (the same shipped weights); a signature is two attributes, so
    ``leak`` counts those alone (v3's exemplars stand on backgrounds of their own, which no image can leak)."""

    name = "mini-v3"
    VERSION = "1"
    world = MINI_V3
    LEAK_RULE = ("the image shows at least one of the two attributes of the target action's signature (the "
                 "protocol's prompts ask for neither)")


def _lever_judge(world: WorldSpec) -> type[MiniV3Judge]:
    """The judge of a v3 lever's world: ``mini-v3``'s (v2's network, the same leak rule) on that world's exemplars,
    signatures and base model; named as the family looks it up (``MiniV3bJudge`` for ``mini-v3b``)."""
    name = judge_class_name(world)
    doc = f"Judge of ``{world.name}``: ``mini-v3``'s (v2's network) on that world's exemplars and base model."
    return type(name, (MiniV3Judge,), {"name": world.name, "world": world, "__doc__": doc, "__module__": __name__,
                                        "__qualname__": name})


MiniV3bJudge = _lever_judge(MINI_V3B)
MiniV3cJudge = _lever_judge(MINI_V3C)
MiniV3pJudge = _lever_judge(MINI_V3P)
MiniV3qJudge = _lever_judge(MINI_V3Q)
MiniV3rJudge = _lever_judge(MINI_V3R)
MiniV3sJudge = _lever_judge(MINI_V3S)
