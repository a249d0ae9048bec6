"""ActionBench: benchmark and toolkit for action-customized text-to-image generation.

Heavy modules (torch, diffusers) load only when used: ``import actionbench`` is cheap.
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_dataset": ("actionbench.dataset", "load_dataset"),
    "Dataset": ("actionbench.dataset", "Dataset"),
    "Action": ("actionbench.dataset", "Action"),
    "Subject": ("actionbench.dataset", "Subject"),
    "load_backbone": ("actionbench.backbone", "load_backbone"),
    "Method": ("actionbench.method", "Method"),
    "MethodConfig": ("actionbench.method", "MethodConfig"),
    "Artifact": ("actionbench.method", "Artifact"),
    "get_method": ("actionbench.registry", "get_method"),
    "list_methods": ("actionbench.registry", "list_methods"),
    "get_evaluator": ("actionbench.registry", "get_evaluator"),
    "list_evaluators": ("actionbench.registry", "list_evaluators"),
    "RunSpec": ("actionbench.runner", "RunSpec"),
    "evaluate": ("actionbench.runner", "evaluate"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'actionbench' has no attribute {name!r}")
