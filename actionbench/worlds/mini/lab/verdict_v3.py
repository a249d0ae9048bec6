"""The pre-registered test on mini v3 (docs/mini-v3-preregistration.md), as code: the gate (section 2), the
mask selectivity ADI needs (section 3, read from ``actionbench mini masks``' record) and the step-matched claim
with its Holm correction (section 4), read from the rows' results.

The rules are the ones committed before any gate row ran; this module only reads them off the results, so anyone
can recompute the outcome from the run folders (or the leaderboard's ``results/mini-v3-ROW.json``).
"""
from __future__ import annotations

from pathlib import Path

from actionbench.results.compare import compare_results
from actionbench.worlds.mini.lab import verdict as v2_verdict
from actionbench.worlds.mini.lab.table import GATE_WORLDS

GATE_WORLD = GATE_WORLDS[0]

GATE_ROW = "p_plus_4_anchors"
FLOOR_ROW = "null"
LIFT_ROWS = ("textual_inversion", "p_plus_4_anchors")
ACTION_OVER_NULL = 0.08
"""(G1) P+ at 4 anchors: action - null at least 8 points, with the paired interval above 0."""
ANIMAL_LEAK = 0.30
"""(G2) leak on animal subjects at least 30 % for P+ at 4 anchors: contamination is there to remove."""
LIFT = 0.15
"""(G3) action lift at least 0.15 for TI and for P+ at 4 anchors."""
CLAIM = ("adi_oracle", "adi_random_masks")
COMPARISONS = (  # (row, comparator, measure): the claim's two first, then the secondary ones; Holm over all
    ("adi_oracle", "adi_random_masks", "leak"), ("adi_oracle", "adi_random_masks", "action"),
    ("adi_oracle", "p_plus_4_anchors", "leak"), ("adi_oracle", "p_plus_4_anchors", "action"),
    ("adi_oracle", "p_plus_4_anchors", "total"), ("adi", "adi_random_masks", "leak"),
    ("adi", "adi_random_masks", "action"), ("adi", "adi_oracle", "leak"),
)
FAMILY_ALPHA = 0.05


def results_path(folder: Path, row: str, world: str = GATE_WORLD) -> Path | None:
    return v2_verdict.results_path(folder, row, world)


def _results(folder: Path, row: str, world: str = GATE_WORLD) -> dict:
    return v2_verdict.row_results(folder, row, world)


def _triple(entry: dict) -> tuple[float, float, float]:
    return entry["mean"], entry["ci95"][0], entry["ci95"][1]


def action_over_null(pplus: dict, null: dict, n_boot: int = 2000, seed: int = 0) -> dict:
    """(G1) on two results: P+'s action minus null's, its paired interval and p, and whether G1 holds."""
    difference = compare_results(pplus, null, n_boot, seed)["metrics"]["action"]
    lo, hi = difference["ci95"]
    return {"difference": difference["difference"], "ci95": [lo, hi], "p_value": difference["p_value"],
            "passed": difference["difference"] >= ACTION_OVER_NULL and lo > 0}


def animal_leak(pplus: dict) -> dict:
    """(G2) on P+'s results: its leak on animal subjects (mean, 95 % interval) and whether G2 holds."""
    animal = _triple(pplus["metrics"]["per_category"]["animal"]["leak"])
    return {"animal_leak": animal, "passed": animal[0] >= ANIMAL_LEAK}


def gate(folder: Path, n_boot: int = 2000, seed: int = 0, world: str = GATE_WORLD) -> dict:
    """(G1)-(G3) on the gate rows; ``passed`` only when all three hold."""
    pplus, null = _results(folder, GATE_ROW, world), _results(folder, FLOOR_ROW, world)
    g1, g2 = action_over_null(pplus, null, n_boot, seed), animal_leak(pplus)
    lifts = {row: (_results(folder, row, world).get("floor") or {}).get("lift") for row in LIFT_ROWS}
    g3 = {"lift": lifts, "passed": all(v is not None and v >= LIFT for v in lifts.values())}
    return {"G1": g1, "G2": g2, "G3": g3, "passed": g1["passed"] and g2["passed"] and g3["passed"],
            "n_boot": n_boot, "seed": seed,
            "actions": {row: _triple(_results(folder, row, world)["metrics"]["action"]) for row in (FLOOR_ROW, *LIFT_ROWS)}}


def selectivity(masks_record: dict) -> dict:
    """Section 3 from a ``mini masks`` record: each preset's merged mask after P+ training, whether it meets the
    threshold, and the preset the ADI rows use (the first that meets it, else ``paper`` with the failure said)."""
    stage = masks_record["stages"].get("trained") or masks_record["stages"]["untrained"]
    rows = {p: {**stage["overall"][p]["both"], "meets": stage["meets"][p]} for p in stage["overall"]}
    meeting = [p for p, r in rows.items() if r["meets"]]
    return {"world": masks_record["world"], "threshold": masks_record["threshold"], "presets": rows,
            "stage": "trained" if "trained" in masks_record["stages"] else "untrained",
            "chosen": meeting[0] if meeting else "paper", "met": bool(meeting)}


def holm(p_values: list[float], alpha: float = FAMILY_ALPHA) -> list[bool]:
    """Holm's step-down rule: which hypotheses are rejected at family-wise ``alpha`` (in input order).

    Five lines, not a dependency: scipy has no Holm, and statsmodels would be installed for this alone.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected


def claim(folder: Path, n_boot: int = 2000, seed: int = 0, world: str = GATE_WORLD) -> dict:
    """Section 4: the comparisons whose rows are there, Holm across them, and the claim's outcome: supported (leak
    of adi_oracle - adi_random_masks below 0, interval excluding 0, surviving Holm; action >= 0 with its upper bound
    above 0), falsified (leak interval entirely above 0, or action interval entirely below), else not shown."""
    present = [c for c in COMPARISONS if results_path(folder, c[0], world) and results_path(folder, c[1], world)]
    cache: dict = {}
    rows = []
    for row, other, measure in present:
        if (row, other) not in cache:
            cache[row, other] = compare_results(_results(folder, row, world), _results(folder, other, world), n_boot,
                                                seed)
        m = cache[row, other]["metrics"][measure]
        rows.append({"row": row, "comparator": other, "measure": measure, "a": m["a"], "b": m["b"],
                     "difference": m["difference"], "ci95": list(m["ci95"]), "p_value": m["p_value"]})
    for r, rejected in zip(rows, holm([r["p_value"] for r in rows])):
        r["holm_rejects_zero"] = rejected
    by = {(r["row"], r["comparator"], r["measure"]): r for r in rows}
    return {"comparisons": rows, "family": len(rows), "pre_registered_family": len(COMPARISONS),
            "outcome": claim_outcome(by.get((*CLAIM, "leak")), by.get((*CLAIM, "action"))),
            "n_boot": n_boot, "seed": seed}


def claim_outcome(leak: dict | None, action: dict | None) -> str:
    """The claim's outcome from its two comparisons (``difference``, ``ci95``, and ``holm_rejects_zero`` for leak)."""
    if leak is None or action is None:
        return "not yet"
    if leak["ci95"][0] > 0 or action["ci95"][1] < 0:
        return "falsified"
    if leak["ci95"][1] < 0 and leak["holm_rejects_zero"] and action["difference"] >= 0 and action["ci95"][1] > 0:
        return "supported"
    return "not shown"


def verdict(folder: Path, masks_record: dict | None, n_boot: int = 2000, seeds: tuple[int, ...] = (0, 1, 2),
            world: str = GATE_WORLD) -> dict:
    """Gate, selectivity and claim of ``world`` (a lever's world) as far as the rows allow; the claim at every
    bootstrap seed in ``seeds`` (the first is the pre-registered one)."""
    claims = {s: claim(folder, n_boot, s, world) for s in seeds} if results_path(folder, CLAIM[0], world) else {}
    return {"world": world, "gate": gate(folder, n_boot, seeds[0], world),
            "selectivity": selectivity(masks_record) if masks_record else None,
            "claim": claims}


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def format_verdict(result: dict) -> list[str]:
    g = result["gate"]
    g1, g2, g3 = g["G1"], g["G2"], g["G3"]
    lines = [f"{result.get('world', GATE_WORLD)} gate (n_boot {g['n_boot']}, seed {g['seed']})",
             "  action: " + ", ".join(f"{row} {_pct(m)} [{_pct(lo)}, {_pct(hi)}] %"
                                     for row, (m, lo, hi) in g["actions"].items()),
             f"  G1 {GATE_ROW} - null, action: {100 * g1['difference']:+.1f} pp [{100 * g1['ci95'][0]:+.1f}, "
             f"{100 * g1['ci95'][1]:+.1f}] (needs >= +{100 * ACTION_OVER_NULL:.0f}, interval above 0): "
             + ("passes" if g1["passed"] else "FAILS"),
             f"  G2 {GATE_ROW} leak on animals: {_pct(g2['animal_leak'][0])} [{_pct(g2['animal_leak'][1])}, "
             f"{_pct(g2['animal_leak'][2])}] % (needs >= {100 * ANIMAL_LEAK:.0f}): " + ("passes" if g2["passed"] else "FAILS"),
             "  G3 lift: " + ", ".join(f"{row} {'-' if v is None else f'{v:.3f}'}" for row, v in g3["lift"].items())
             + f" (needs >= {LIFT} each): " + ("passes" if g3["passed"] else "FAILS"),
             f"  gate {'PASSES' if g['passed'] else 'FAILS'}"]
    s = result["selectivity"]
    if s is None:
        lines.append("selectivity: no `mini masks` record given (--masks FILE)")
    else:
        t = s["threshold"]
        lines.append(f"selectivity on {s['world']}, {s['stage']} identifiers (merged mask; needs context <= "
                     f"{t['context']}, action >= {t['action']}):")
        lines += [f"  {p}: context {r['context']:.2f}, action {r['action']:.2f}, kept {r['kept_fraction']:.3f}: "
                  + ("meets" if r["meets"] else "does not meet") for p, r in s["presets"].items()]
        lines.append(f"  ADI rows use: {s['chosen']}" + ("" if s["met"] else " (no preset meets the threshold)"))
    if not result["claim"]:
        lines.append(f"claim: not yet (no {CLAIM[0]} row)")
    for seed, c in result["claim"].items():
        lines.append(f"claim, bootstrap seed {seed} (n_boot {c['n_boot']}; Holm over {c['family']} of the "
                     f"{c['pre_registered_family']} pre-registered comparisons, family-wise {FAMILY_ALPHA}):")
        lines += [f"  {r['row']} - {r['comparator']}, {r['measure']}: {_pct(r['a'])} - {_pct(r['b'])} = "
                  f"{100 * r['difference']:+.1f} pp [{100 * r['ci95'][0]:+.1f}, {100 * r['ci95'][1]:+.1f}], "
                  f"p {r['p_value']:.3f}" + (", survives Holm" if r["holm_rejects_zero"] else "")
                  for r in c["comparisons"]]
        lines.append(f"  claim {c['outcome'].upper()}")
    return lines
