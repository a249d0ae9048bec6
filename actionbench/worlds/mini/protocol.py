"""A mini world's protocol as a suite reads it: ``protocol.json`` in the world's shipped folder, turned into the
suite's method settings.

Measuring a protocol (the rule, the held-out curves, the sampler comparison) is the lab's work
(``actionbench.worlds.mini.lab.protocol``, ``actionbench mini protocol``); a run only needs to read the record.
"""
from __future__ import annotations

PROTOCOL_FILE = "protocol.json"


def method_settings(protocol: dict) -> dict[str, dict]:
    """The suite's ``method_settings`` from a protocol record: sampler steps for all, then per method."""
    settings: dict[str, dict] = {"*": {"sampler.num_inference_steps": protocol["sampler"]["num_inference_steps"]}}
    if protocol["sampler"].get("solver", "ddim") != "ddim":  # records from before the solvers were compared: DDIM
        settings["*"]["sampler.solver"] = protocol["sampler"]["solver"]
    for row in protocol.get("rows", []):
        settings.setdefault(row["method"], {}).update(row["settings"])
    return settings
