"""The pre-registered test of ADI on mini v2 (docs/mini-v2-preregistration.md), as code: the setup check (a)
and the claim (b) with its verdict (c), read from the run folders of ``actionbench mini table``.

The rules here are the ones written and committed before any method ran on the v2 world; this module only
reads them off the results, so that anyone can recompute the verdict from the run folders (or the
leaderboard's results files) instead of trusting a hand-made table.
"""
from __future__ import annotations

from pathlib import Path

from actionbench.results.compare import compare_results, load_results
from actionbench.errors import ActionBenchError
from actionbench.worlds.mini.lab.table import PREREGISTERED_WORLD, board_name

FLOOR_ROW = "null"
TEXT_ONLY_ROW = "sd"
CONTAMINATION_ROWS = ("textual_inversion", "p_plus", "dreambooth")
ANIMAL_LEAK = 0.30
"""(a) 2: leak on animal subjects of at least this much shows contamination ..."""
SUBJECT_DROP = 0.15
"""... or subject accuracy at least this far (15 points) below the ``null`` row's."""
CLAIM_ROWS = ("adi", "adi_oracle")
COMPARATORS = ("p_plus_4_anchors", "adi_random_masks")
PREDICTED = {"leak": -1, "total": +1}
"""(b): the sign of ADI - comparator that the claim predicts, per measure."""


def results_path(folder: Path, row: str, world: str = PREREGISTERED_WORLD) -> Path | None:
    """A row's results in a table's runs folder (``ROW/results.json``) or on a leaderboard
    (``results/WORLD-ROW.json``, the table's ``board_name``), so the verdict is recomputed from either; None if
    neither has it."""
    for path in (folder / row / "results.json", folder / "results" / f"{board_name(world, row)}.json"):
        if path.is_file():
            return path
    return None


def missing_rows(folder: Path, rows) -> list[str]:
    return [row for row in rows if results_path(folder, row) is None]


def row_results(runs_dir: Path, row: str, world: str = PREREGISTERED_WORLD) -> dict:
    """``results_path``'s results, or an error naming the command that makes them."""
    path = results_path(runs_dir, row, world)
    if path is None:
        raise ActionBenchError(f"no results for row {row!r} in {runs_dir} (neither {row}/results.json nor "
                               f"results/{board_name(world, row)}.json); run it with "
                               f"`actionbench mini table --suite {world} --rows {row} --runs {runs_dir}`")
    return load_results(path)



def _interval(metrics: dict, name: str) -> tuple[float, float, float]:
    entry = metrics[name]
    return entry["mean"], entry["ci95"][0], entry["ci95"][1]


def setup_check(runs_dir: Path) -> dict:
    """(a): ``sd``'s action interval overlaps ``null``'s, and one of TI, P+, DreamBooth shows contamination
    (leak on animals >= 30 %, or subject accuracy >= 15 points below ``null``'s; point estimates, as written).
    One contaminated row is enough, so rows not run yet are listed in ``missing``; ``status`` is "passes",
    "fails", or "not yet" (no contamination so far, rows still to run)."""
    null = row_results(runs_dir, FLOOR_ROW)["metrics"]
    sd = row_results(runs_dir, TEXT_ONLY_ROW)["metrics"]
    _, null_lo, null_hi = _interval(null, "action")
    _, sd_lo, sd_hi = _interval(sd, "action")
    floor_ok = sd_lo <= null_hi and null_lo <= sd_hi
    rows, missing = {}, []
    for row in CONTAMINATION_ROWS:
        if results_path(runs_dir, row) is None:
            missing.append(row)  # one contaminated row is enough: the check can pass before the others finish
            continue
        metrics = row_results(runs_dir, row)["metrics"]
        animal_leak = _interval(metrics["per_category"]["animal"], "leak")
        subject_drop = null["subject"]["mean"] - metrics["subject"]["mean"]
        rows[row] = {"animal_leak": animal_leak, "leak": _interval(metrics, "leak"),
                     "subject": _interval(metrics, "subject"), "subject_below_null": subject_drop,
                     "contaminated": animal_leak[0] >= ANIMAL_LEAK or subject_drop >= SUBJECT_DROP}
    contaminated = [row for row, r in rows.items() if r["contaminated"]]
    passed = floor_ok and bool(contaminated)
    status = "passes" if passed else ("not yet" if floor_ok and missing else "fails")
    return {"floor": {"null_action": _interval(null, "action"), "sd_action": _interval(sd, "action"),
                      "overlap": floor_ok},
            "rows": rows, "missing": missing, "contaminated": contaminated, "passed": passed, "status": status}


def claim(runs_dir: Path, n_boot: int = 2000, seed: int = 0) -> dict:
    """(b) and (c): each ADI row against each comparator, the paired clustered difference of leak and total,
    and the verdict: supported (all eight intervals exclude 0 as predicted), falsified (for some pair leak is
    entirely above 0 or total entirely below), or not shown."""
    comparisons = []
    for row in CLAIM_ROWS:
        for other in COMPARATORS:
            c = compare_results(row_results(runs_dir, row), row_results(runs_dir, other), n_boot, seed)
            for measure, sign in PREDICTED.items():
                m = c["metrics"][measure]
                lo, hi = m["ci95"]
                comparisons.append({"row": row, "comparator": other, "measure": measure, "a": m["a"], "b": m["b"],
                                    "difference": m["difference"], "ci95": [lo, hi], "p_value": m["p_value"],
                                    "as_predicted": (hi < 0) if sign < 0 else (lo > 0),
                                    "against": (lo > 0) if sign < 0 else (hi < 0)})
    if all(c["as_predicted"] for c in comparisons):
        verdict = "supported"
    elif any(c["against"] for c in comparisons):
        verdict = "falsified"
    else:
        verdict = "not shown"
    return {"comparisons": comparisons, "verdict": verdict, "n_boot": n_boot, "seed": seed}


SECONDARY_ROWS = ("null", "sd", "textual_inversion", "p_plus", "p_plus_4_anchors", "adi_random_masks",
                  "adi_context_mask_only", "adi_action_mask_only", "adi", "adi_oracle", "dreambooth", "custom_diffusion",
                  "reversion", "controlnet")


def leak_parts(results: dict) -> dict[str, float]:
    """What leaks, from the judge's readings in the records: the share of images showing the target action's
    background type, and the share showing one of its two attributes (overall and on animals). Secondary,
    reported without a verdict."""
    signatures = results["judge"]["signatures"]
    animals = set((results["metrics"].get("per_category") or {}).get("animal", {}).get("subjects") or [])
    counts = {"background": 0, "attributes": 0, "attributes_animals": 0}
    n = n_animals = 0
    for record in results["records"]:
        detail, signature = record["detail"], signatures[record["action_id"]]
        attribute = any(a in signature["attributes"] for a in detail["attributes"])
        counts["background"] += detail["background_type"] == signature["background_type"]
        counts["attributes"] += attribute
        n += 1
        if record["subject_id"] in animals:
            counts["attributes_animals"] += attribute
            n_animals += 1
    return {"background": counts["background"] / n, "attributes": counts["attributes"] / n,
            "attributes_animals": counts["attributes_animals"] / max(n_animals, 1)}


def format_leak_parts(runs_dir: Path) -> list[str]:
    lines = ["secondary: what leaks (% of images; no verdict)",
             f"  {'row':24s} {'leak':>6s} {'background':>11s} {'attribute':>10s} {'attribute, animals':>19s}"]
    for row in SECONDARY_ROWS:
        if results_path(runs_dir, row) is None:
            continue
        results = row_results(runs_dir, row)
        if not results["judge"].get("signatures"):
            continue  # no readings of context to split
        parts = leak_parts(results)
        lines.append(f"  {row:24s} {_pct(results['metrics']['leak']['mean']):>6s} {_pct(parts['background']):>11s} "
                     f"{_pct(parts['attributes']):>10s} {_pct(parts['attributes_animals']):>19s}")
    return lines


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _with_interval(triple) -> str:
    mean, lo, hi = triple
    return f"{_pct(mean)} [{_pct(lo)}, {_pct(hi)}]"


def format_setup_check(check: dict) -> list[str]:
    floor = check["floor"]
    lines = ["(a) setup check",
             f"  1. action: sd {_with_interval(floor['sd_action'])} %, null {_with_interval(floor['null_action'])} %: "
             + ("intervals overlap (passes)" if floor["overlap"] else "intervals do not overlap (fails)")]
    for row, r in check["rows"].items():
        lines.append(f"  2. {row}: leak on animals {_with_interval(r['animal_leak'])} %, subject "
                     f"{_with_interval(r['subject'])} % ({_pct(r['subject_below_null'])} points below null): "
                     + ("contamination" if r["contaminated"] else "no contamination by the rule"))
    if check["missing"]:
        lines.append(f"  2. not run yet: {', '.join(check['missing'])}")
    lines.append(f"  setup check {check['status'].upper()}"
                 + (f" (contamination: {', '.join(check['contaminated'])})" if check["contaminated"] else ""))
    return lines


def format_claim(result: dict) -> list[str]:
    lines = ["(b) ADI - comparator, paired, clustered 95 % intervals "
             f"(n_boot {result['n_boot']}, seed {result['seed']})"]
    for c in result["comparisons"]:
        lo, hi = c["ci95"]
        mark = "as predicted" if c["as_predicted"] else ("AGAINST" if c["against"] else "includes 0")
        lines.append(f"  {c['row']} - {c['comparator']}, {c['measure']}: {_pct(c['a'])} - {_pct(c['b'])} = "
                     f"{100 * c['difference']:+.1f} pp [{100 * lo:+.1f}, {100 * hi:+.1f}], p {c['p_value']:.3f}: {mark}")
    lines.append(f"(c) verdict: {result['verdict'].upper()}")
    return lines


def verdict(runs_dir: Path, n_boot: int = 2000, seed: int = 0) -> dict:
    """The test as far as the rows in ``runs_dir`` allow: ``{"setup_check", "claim" (None until the ADI rows
    and their comparators are there), "missing_for_claim"}``. The setup check needs ``null`` and ``sd``."""
    missing = missing_rows(runs_dir, (*CLAIM_ROWS, *COMPARATORS))
    return {"setup_check": setup_check(runs_dir), "claim": None if missing else claim(runs_dir, n_boot, seed),
            "missing_for_claim": missing}


def format_verdict(result: dict, runs_dir: Path) -> list[str]:
    """What ``mini verdict`` prints: the check, the claim (or what it still needs), what leaks."""
    lines = format_setup_check(result["setup_check"])
    lines += (format_claim(result["claim"]) if result["claim"]
              else [f"(b) not yet: no results for {', '.join(result['missing_for_claim'])}"])
    return lines + format_leak_parts(runs_dir)
