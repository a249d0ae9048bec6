"""Helpers shared by tests (not part of the library)."""
from __future__ import annotations

from typing import Mapping

import torch


def changed_parameters(before: Mapping[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    """Names of parameters that differ (bitwise) from a snapshot: for tests and artifact deltas."""
    after = dict(module.named_parameters())
    return [name for name, value in before.items() if not torch.equal(value, after[name].detach())]


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}
