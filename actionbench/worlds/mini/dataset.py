"""The "mini" dataset: the synthetic set's exemplars rendered at the mini resolution."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from actionbench.worlds.mini.model import MINI, MINI_DATASET_VERSION, MINI_RESOLUTION


def load_mini_dataset(root: str | Path | None = None):
    """The mini suite: the synthetic dataset's exemplars (8 actions x 10 generic people, v1-format
    caption templates) rendered at the mini resolution; the 23 subjects and the v1 protocol."""
    from actionbench.worlds.synthetic import load_synthetic

    dataset = load_synthetic(root=root, size=MINI_RESOLUTION)
    return replace(dataset, name=MINI, extra={**dataset.extra, "world": MINI_DATASET_VERSION})
