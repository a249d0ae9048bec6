"""What the world's judge reads in ADI's action-different samples.

ADI's action mask needs, per exemplar, images of the *same person in the same context doing something
else* (x^(ā,c)). By default they are generated: a copy of the UNet tuned on the one exemplar, then
prompted for other actions (``methods/adi_samples.py``). On mini v2 the judge can say how often such a
sample is what ADI assumes it is: the generic exemplar person (subject ``person``), with the exemplar's
attributes and background type (context kept), in another pose than the exemplar's (action changed).
The world's oracle samples (``action_different.source=oracle``: the exemplar re-rendered in everyday
poses) are read the same way: the judge's own ceiling on these measures.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from actionbench.api.config import build_config
from actionbench.methods.adi import ADI
from actionbench.methods.adi_samples import action_different_samples, oracle_samples
from actionbench.worlds.mini.judge_v2 import NO_TYPE, PERSON, Reading

MEASURES = ("person_kept", "attributes_kept", "background_kept", "context_kept", "pose_changed", "as_assumed")


def context_of(context: dict) -> tuple[tuple[str, ...], str]:
    """An exemplar's attributes (in the judge's order) and background type (``NO_TYPE`` for a plain one)."""
    from actionbench.worlds.synthetic import ATTRIBUTES  # here, not at import: the synthetic world reads its manifest

    background = context["background"]
    kind = background.split(":", 1)[1] if background.startswith("type:") else NO_TYPE
    return tuple(a for a in ATTRIBUTES if a in context["attributes"]), kind


def read_sample(reading: Reading, exemplar_pose: str, context: tuple[tuple[str, ...], str]) -> dict[str, bool]:
    """One sample against its exemplar: the person kept, the attributes and the background type kept (both: the
    context kept), the pose changed, and all of it (as ADI's action mask assumes)."""
    person = reading.subject == PERSON
    attributes, background = tuple(reading.attributes) == context[0], reading.background_type == context[1]
    changed = reading.pose != exemplar_pose
    return {"person_kept": person, "attributes_kept": attributes, "background_kept": background,
            "context_kept": attributes and background, "pose_changed": changed,
            "as_assumed": person and attributes and background and changed}


def check_samples(suite, backbone, dataset, judge, overrides: dict | None = None,
                  sources: Sequence[str] = ("generated", "oracle"), log: Callable[[str], None] = print) -> dict:
    """Per source, per action and overall, the share of samples read as ``MEASURES`` say.

    ``suite`` gives ADI's settings (the ones its rows run with; ``overrides`` on top); the generated samples come
    from ADI's cache (made now where missing, as an ADI run would).
    """
    from actionbench.worlds.synthetic import ACTION_POSES  # here, not at import: the synthetic world reads its manifest

    cfg = build_config(ADI.Config, {**suite.settings_for("adi", ADI.Config), **(overrides or {})})
    out: dict = {"suite": suite.name, "images_per_exemplar": cfg.action_different.images, "sources": {}}
    for source in sources:
        per_action, totals, count = {}, dict.fromkeys(MEASURES, 0), 0
        for action in dataset.actions:
            samples = (action_different_samples(backbone, action.exemplars, cfg) if source == "generated"
                       else [oracle_samples(e, cfg) for e in action.exemplars])
            hits, n = dict.fromkeys(MEASURES, 0), 0
            for (images, _), context in zip(samples, dataset.extra["contexts"][action.id]):
                for reading in judge.predict(images):
                    for name, ok in read_sample(reading, ACTION_POSES[action.id], context_of(context)).items():
                        hits[name] += ok
                    n += 1
            per_action[action.id] = {"n": n, **{name: hits[name] / n for name in MEASURES}}
            totals = {name: totals[name] + hits[name] for name in MEASURES}
            count += n
            log(f"{source} {action.id}: " + ", ".join(f"{name} {hits[name]}/{n}" for name in MEASURES))
        out["sources"][source] = {"n": count, **{name: totals[name] / count for name in MEASURES},
                                  "per_action": per_action}
    return out
