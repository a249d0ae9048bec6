"""What the synthetic world shares with ActionBench v1: its 8 actions and its 23 subjects.

They are read from the v1 manifest, the one place they are written down, so the synthetic
dataset always has the benchmark's shape.
"""
from __future__ import annotations


def _v1_constants() -> tuple[dict[str, str], tuple[tuple[str, str, str], ...]]:
    from actionbench.manifest import read_manifest

    manifest, _ = read_manifest("v1")
    phrases = {a["id"]: a["phrase"] for a in manifest["actions"]}
    subjects = tuple((s["id"], s["name"], s["category"]) for s in manifest["subjects"])
    return phrases, subjects


# action id -> plain-language phrase; (subject id, display name, category) in v1 order
ACTION_PHRASES, SUBJECTS = _v1_constants()
ACTION_IDS = tuple(ACTION_PHRASES)
SUBJECT_IDS = tuple(s[0] for s in SUBJECTS)
