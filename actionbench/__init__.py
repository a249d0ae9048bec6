"""ActionBench: benchmark and toolkit for action-customized text-to-image generation.

Heavy modules (torch, diffusers) load only when used: ``import actionbench`` is cheap.
"""
from __future__ import annotations

__version__ = "0.1.0"

PORTABLE_CPU_MATH = {
    # The same vector kernels on every x86 CPU that has AVX2 for torch's own ops and oneDNN's convolutions,
    # which would otherwise pick AVX-512 paths where they exist and round differently (measured: the same
    # run on two machines, 126 of 368 judgments differed). On an AVX2 machine both are what torch picks anyway.
    # MKL is not pinned: its reproducibility mode (MKL_CBWR=AVX2) changed the rounding on an AVX2 machine
    # too (ADI's action-different tuning, from its first step), which would move every landed row; set it
    # yourself to pin MKL's GEMMs across CPUs (docs/reliability.md, "Same numbers on other machines").
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
"""Set (unless already set, or ``ACTIONBENCH_PORTABLE_CPU=0``) when actionbench is imported before torch,
as the command line always is; recorded in every result's ``provenance.machine``."""


def _portable_cpu_math() -> None:
    import os
    import sys

    if os.environ.get("ACTIONBENCH_PORTABLE_CPU", "1") == "0" or "torch" in sys.modules:
        return
    for key, value in PORTABLE_CPU_MATH.items():
        os.environ.setdefault(key, value)


_portable_cpu_math()

_LAZY = {
    "load_dataset": ("actionbench.dataset", "load_dataset"),
    "Dataset": ("actionbench.dataset", "Dataset"),
    "Action": ("actionbench.dataset", "Action"),
    "Subject": ("actionbench.dataset", "Subject"),
    "load_backbone": ("actionbench.backbone", "load_backbone"),
    "Method": ("actionbench.api.method", "Method"),
    "MethodConfig": ("actionbench.api.method", "MethodConfig"),
    "Artifact": ("actionbench.api.method", "Artifact"),
    "INTERFACE_VERSION": ("actionbench.api.method", "INTERFACE_VERSION"),
    "get_method": ("actionbench.api.registry", "get_method"),
    "list_methods": ("actionbench.api.registry", "list_methods"),
    "get_evaluator": ("actionbench.api.registry", "get_evaluator"),
    "list_evaluators": ("actionbench.api.registry", "list_evaluators"),
    "RunSpec": ("actionbench.run.runner", "RunSpec"),
    "evaluate": ("actionbench.run.runner", "evaluate"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'actionbench' has no attribute {name!r}")
