"""Offline worlds: each a package with its renderer, dataset, model, judge and CLI.

``synthetic``: procedurally drawn figures in the shape of ActionBench v1 (no download).
``mini``: ActionBench-mini, a small Stable-Diffusion-structured model trained on those figures,
with an exact judge: the offline place where methods really learn.

The core never imports a world: it finds their backbones, datasets, judges and suites by name
through the lazy tables in ``actionbench.api.registry``.
"""
