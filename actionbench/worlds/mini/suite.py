"""The mini suites: a world's model, its dataset and its exact judge, one suite per world version.

``mini`` is the world ``world.PLAIN_NAME_WORLD``; ``mini-v1``, ``mini-v2`` and ``mini-v3`` name theirs. A suite's
method settings are its world's protocol (``protocol.json`` in the world's shipped folder, set by
``actionbench mini protocol`` from held-out loss curves and the base model's own images, never from
benchmark scores); a world without one runs every method at its own (Stable Diffusion 2.1) defaults,
as the first mini leaderboard rows did. ``SPEED_SETTINGS`` are added on top: they change how fast a
method runs on the small mini model, not what it computes.

Suites are built on first use (``world_suite``), never at import: importing a world reads no data.
"""
from __future__ import annotations

import json
from functools import cache

from actionbench.errors import ConfigError
from actionbench.api.spec import Suite
from actionbench.worlds.mini.family import names, suite_constant
from actionbench.worlds.mini.folders import ShippedDataError, shipped_dir
from actionbench.worlds.mini.protocol import PROTOCOL_FILE, method_settings
from actionbench.worlds.mini.world import PLAIN_NAME, PLAIN_NAME_WORLD, WORLDS, world_named


SPEED_SETTINGS = {"adi": {"action_different.tune_batch": 10}}
"""Settings that change speed only (equal results within float tolerance): ADI tunes all 10 exemplars' copies
of the 1 M-parameter mini UNet together (5 MB of weights and optimiser state): 0.36x the CPU of one by one
(``benchmarks/speed.py --sections tune``)."""


STEP_MATCHED_METHODS = ("textual_inversion", "p_plus", "adi")
"""The identifier methods a step-matched world trains for ADI's protocol step count (same lr, 5e-3, in all three)."""


def protocol_settings(world: str) -> tuple[dict, str]:
    """The suite's method settings: the world's shipped protocol (step-matched where the world says so), then
    ``SPEED_SETTINGS``; and a note saying where the protocol comes from."""
    spec = world_named(world)
    try:
        path = shipped_dir(world) / PROTOCOL_FILE
    except ShippedDataError:  # a world without a shipped folder has no protocol; the speed settings still hold
        path = None
    if path is None or not path.is_file():
        return _with_speed({}), "no protocol: every method at its own defaults"
    settings = method_settings(json.loads(path.read_text()))
    owner = next(w.name for w in WORLDS.values() if w.data_folder == spec.data_folder)  # the first to ship it
    note = f"{owner}'s protocol.json (actionbench mini protocol)"
    if spec.step_matched:
        steps = settings["adi"]["train_steps"]
        for method in STEP_MATCHED_METHODS:
            settings[method] = {**settings.get(method, {}), "train_steps": steps}
        note += f", with {', '.join(STEP_MATCHED_METHODS)} all at ADI's {steps} steps (step-matched)"
    return _with_speed(settings), note


def _with_speed(settings: dict) -> dict:
    merged = {method: dict(values) for method, values in settings.items()}
    for method, values in SPEED_SETTINGS.items():
        merged.setdefault(method, {}).update(values)
    return merged


DESCRIPTIONS = {
    "mini-v1": "ActionBench-mini v1: the first offline world (shipped model, rendered exemplars, exact judge)",
    "mini-v2": "ActionBench-mini v2: exemplars that share their action's context signature (docs/mini-v2-design.md)",
    "mini-v3": ("ActionBench-mini v3: v2's model and judge; the shared signature is two attributes, each exemplar on its "
                "own background; identifier methods step-matched (docs/mini-v3-preregistration.md)"),
    "mini-v3b": ("ActionBench-mini v3b: mini-v3 with the signature on 6 of the 10 exemplars (lever 2 of "
                 "docs/mini-v3-preregistration.md)"),
    "mini-v3c": ("ActionBench-mini v3c: mini-v3's exemplars and judge with a base model trained on with 3x the "
                 "benchmark-pose renders, never named (lever 3 of docs/mini-v3-preregistration.md)"),
    "mini-v3p": ("ActionBench-mini v3p: mini-v3's exemplars and judge with a base model trained on captions that "
                 "describe every pose by its parts, never naming an action (lever 5 of docs/mini-v3-preregistration.md)"),
    "mini-v3q": ("ActionBench-mini v3q: mini-v3p's part captions with 3x the benchmark-pose renders (lever 6 of "
                 "docs/mini-v3-preregistration.md)"),
    "mini-v3r": ("ActionBench-mini v3r: mini-v3q's base model with the signature on 6 of the 10 exemplars (lever 7 of "
                 "docs/mini-v3-preregistration.md)"),
    "mini-v3s": ("ActionBench-mini v3s: mini-v3r with no signature on any exemplar, a control and not a gate world "
                 "(docs/mini-v3-preregistration.md, lever 7)"),
}
"""Each world's suite description, by world name (``world.WORLDS``' keys)."""


@cache
def world_suite(name: str) -> Suite:
    """The suite ``name`` (``mini`` or a world's name), built on first use and then kept: building it reads the
    world's shipped ``protocol.json``, which importing this module must not (listing names reads no data).

    Raises:
        ConfigError: ``name`` is no mini suite.
    """
    if name == PLAIN_NAME:  # the plain name: the current world's settings under the plain names
        settings, note = protocol_settings(PLAIN_NAME_WORLD)
        return Suite(name=PLAIN_NAME, backbone=PLAIN_NAME, dataset=PLAIN_NAME, judge=PLAIN_NAME,
                     description=f"ActionBench-mini: the offline world ({PLAIN_NAME_WORLD}: shipped model, rendered "
                                 "exemplars, exact judge)",
                     method_settings=settings, protocol_note=note)
    if name not in WORLDS:
        raise ConfigError(f"{name!r} is no mini suite; known: {', '.join(names())}")
    settings, note = protocol_settings(name)
    return Suite(name=name, backbone=name, dataset=name, judge=name, description=DESCRIPTIONS[name],
                 method_settings=settings, protocol_note=note)


def __getattr__(attribute: str) -> Suite:
    # MINI_SUITE, MINI_V1_SUITE, ... were module constants built at import; they stay importable (the family's
    # registry targets name them, and so may third-party code), now built on first access instead
    for suite in names():
        if suite_constant(suite) == attribute:
            return world_suite(suite)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
