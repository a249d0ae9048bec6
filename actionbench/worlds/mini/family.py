"""The mini family's registry names, read from ``world.WORLDS``: a backbone, a dataset, a judge and a suite for
each version, and for the plain name ``mini``.

``actionbench.api.registry`` knows the family by one hook (``BUILTIN_FAMILIES["mini"]``, this module's ``entries``),
called on a registry's first lookup; so a new version is a ``WorldSpec`` in ``WORLDS`` plus its judge class, its
dataset loader and its suite description, and never a line in the core. The names follow one pattern per kind:

* judge: ``judge:MiniJudge`` for the plain name; a version's ``Mini<V>Judge`` (``mini-v3b`` -> ``MiniV3bJudge``) in
  ``judge`` (v1's network: pose and subject) or, for a world whose renders wear contexts, ``judge_v2`` (the network
  that also reads attributes and background types);
* backbone: ``model:load_mini_backbone`` for all (it reads the world from the name, ``mini-v2:FOLDER`` too);
* dataset: ``dataset:load_<name>_dataset`` (``mini-v3c`` -> ``load_mini_v3c_dataset``);
* suite: ``suite:<NAME>_SUITE`` (``mini-v3c`` -> ``MINI_V3C_SUITE``), built on first access.

Imports only ``world``: no torch, no data.
"""
from __future__ import annotations

from actionbench.worlds.mini.world import PLAIN_NAME, WORLDS, WorldSpec

PACKAGE = "actionbench.worlds.mini"


def names() -> list[str]:
    """Every name of the family: the plain name, then one per world."""
    return [PLAIN_NAME, *WORLDS]


def suite_constant(name: str) -> str:
    """The ``suite`` module attribute a suite is found under: ``mini-v3b`` -> ``MINI_V3B_SUITE``."""
    return name.upper().replace("-", "_") + "_SUITE"


def judge_class_name(world: WorldSpec) -> str:
    """``mini-v3b`` -> ``MiniV3bJudge``."""
    return f"Mini{world.name.removeprefix(PLAIN_NAME + '-').capitalize()}Judge"


def judge_target(world: WorldSpec) -> str:
    module = "judge_v2" if world.contexts else "judge"
    return f"{PACKAGE}.{module}:{judge_class_name(world)}"


def entries(group: str) -> dict[str, str]:
    """name -> ``"module:object"`` for one entry-point group (``actionbench.evaluators``, ``actionbench.backbones``,
    ``actionbench.datasets``, ``actionbench.suites``); no names for any other group."""
    if group == "actionbench.evaluators":
        return {PLAIN_NAME: f"{PACKAGE}.judge:MiniJudge", **{n: judge_target(w) for n, w in WORLDS.items()}}
    if group == "actionbench.backbones":
        return {n: f"{PACKAGE}.model:load_mini_backbone" for n in names()}
    if group == "actionbench.datasets":
        return {n: f"{PACKAGE}.dataset:load_{n.replace('-', '_')}_dataset" for n in names()}
    if group == "actionbench.suites":
        return {n: f"{PACKAGE}.suite:{suite_constant(n)}" for n in names()}
    return {}
