"""The mini datasets, one per world: ``mini-v1`` (also the plain ``mini`` for now), ``mini-v2`` and ``mini-v3``."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from actionbench.worlds.mini.world import (MINI_V1, MINI_V2, MINI_V3, MINI_V3B, MINI_V3C, MINI_V3P, MINI_V3Q,
                                           MINI_V3R, MINI_V3S, PLAIN_NAME, PLAIN_NAME_WORLD)


def load_v1_world_dataset(name: str = MINI_V1.name, root: str | Path | None = None):
    """v1's data: the synthetic dataset's exemplars (8 actions x 10 generic people, v1-format caption
    templates) rendered at the mini resolution; the 23 subjects and the v1 protocol."""
    from actionbench.worlds.synthetic import load_synthetic

    dataset = load_synthetic(root=root, size=MINI_V1.resolution)
    return replace(dataset, name=name, extra={**dataset.extra, "world": MINI_V1.name})


def load_mini_dataset(root: str | Path | None = None):
    """The plain ``mini`` dataset: the data of the world ``world.PLAIN_NAME_WORLD``."""
    if PLAIN_NAME_WORLD == MINI_V1.name:
        return load_v1_world_dataset(PLAIN_NAME, root)
    from actionbench.worlds.mini.exemplars import load_exemplar_dataset

    return load_exemplar_dataset(MINI_V2, PLAIN_NAME, root)


def load_mini_v1_dataset(root: str | Path | None = None):
    """``mini-v1``: v1's exemplars (the same images and hash as ``mini`` had before v2)."""
    return load_v1_world_dataset(MINI_V1.name, root)


def _exemplar_loader(world, doc: str):
    """The dataset loader of a world whose exemplars ``exemplars`` renders, named as the family looks it up
    (``load_mini_v3b_dataset`` for ``mini-v3b``)."""

    def load(root: str | Path | None = None):
        from actionbench.worlds.mini.exemplars import load_exemplar_dataset

        return load_exemplar_dataset(world, world.name, root)

    load.__name__ = load.__qualname__ = f"load_{world.name.replace('-', '_')}_dataset"
    load.__doc__ = doc
    return load


load_mini_v2_dataset = _exemplar_loader(
    MINI_V2, "``mini-v2``: exemplars that carry their action's context signature (``exemplars``), 32 px.")
load_mini_v3_dataset = _exemplar_loader(
    MINI_V3, "``mini-v3``: exemplars whose signature is two attributes, each on its own background, 32 px.")
load_mini_v3b_dataset = _exemplar_loader(MINI_V3B, "``mini-v3b``: as ``mini-v3`` with the signature on 6 of the 10.")
load_mini_v3c_dataset = _exemplar_loader(MINI_V3C, "``mini-v3c`` (lever 3): ``mini-v3``'s exemplars, v3c's model.")
load_mini_v3p_dataset = _exemplar_loader(MINI_V3P, "``mini-v3p`` (lever 5): ``mini-v3``'s exemplars, v3p's model.")
load_mini_v3q_dataset = _exemplar_loader(MINI_V3Q, "``mini-v3q`` (lever 6): ``mini-v3``'s exemplars, v3q's model.")
load_mini_v3r_dataset = _exemplar_loader(MINI_V3R, "``mini-v3r`` (lever 7): ``mini-v3b``'s exemplars, v3q's model.")
load_mini_v3s_dataset = _exemplar_loader(
    MINI_V3S, "``mini-v3s`` (lever 7's control): ``mini-v3r``'s exemplars with no signature, v3q's model.")
