"""Re-running a leaderboard entry from its recorded spec, and saying whether the new numbers agree.

The spec records everything that decides the numbers: method and its full config, backbone
(fingerprint: id, dtype, attention...), dataset and protocol, suite, preset, training seeds and
the judge. ``reproduce`` rebuilds the ``RunSpec`` from it, runs ``actionbench.run.runner.evaluate``
into a new folder, and compares: each of action, subject and total must fall inside the entry's
95 % clustered interval. It prints both runs' numbers and the paired difference
(``actionbench.results.compare``) beside them.

A different CPU can round training differently (measured: 126 of 368 judgments moved between two
x86 machines), so "inside the interval" is the test, not equality. This is the check for images
the recorded spec did not make: re-judging (``rejudge``) cannot see those.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping

from actionbench.errors import ActionBenchError
from actionbench.io import read_json

from .tables import display_metrics

METRICS = ("action", "subject", "total")
DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
SLACK = 1e-9  # a mean on the interval's edge is inside


def reproduce_spec(results: Mapping):
    """The ``RunSpec`` an entry was made from: method and config, backbone, dataset, suite, preset,
    training seeds and judge, rebuilt from its recorded spec.

    Raises:
        ActionBenchError: the method is not installed here, or its config no longer takes the recorded fields.
    """
    from actionbench.run.runner import recorded_run_spec

    recorded = results["spec"]
    spec = recorded_run_spec(recorded)
    if spec.config is None:
        commit = (results.get("provenance") or {}).get("git_commit")
        raise ActionBenchError(
            f"method {recorded['method']!r} is not installed here, or its config no longer takes the recorded "
            "fields (configs were reorganised since); re-run with the ActionBench that made the entry"
            + (f" (git commit {commit[:12]}: `git checkout {commit[:12]}`)" if commit else ""))
    return dataclasses.replace(spec, judge=str(results["judge"]["name"]))


def reproduce_options(results: Mapping, out: str | Path, device: str = "cpu", data_root: str | Path | None = None):
    """``RunOptions`` that rebuild the entry's backbone as recorded (dtype, attention) into ``out``."""
    from actionbench.api.spec import RunOptions

    backbone = results["spec"].get("backbone") or {}
    return RunOptions(out=Path(out), device=device, dtype=DTYPES.get(str(backbone.get("dtype")), "fp32"),
                      attention=str(backbone.get("attention", "sdpa")), data_root=Path(data_root) if data_root else None,
                      judge_options=dict(results["judge"].get("options") or {}))


def reproduce(results: Mapping, out: str | Path, device: str = "cpu", data_root: str | Path | None = None,
              evaluate: Callable | None = None) -> dict:
    """Re-run an entry's spec into ``out`` and compare the new numbers with the entry's intervals.

    Args:
        results: the entry's results record.
        out: a new (or empty) run folder; a killed re-run resumes there.
        device, data_root: where to run, where the dataset is.
        evaluate: the runner's ``evaluate`` (replaceable in tests).

    Returns:
        ``compare_reproduction(results, new_results)`` with ``"results_file"`` (the new results.json).
    """
    from actionbench.run import runner

    spec = reproduce_spec(results)
    path = (evaluate or runner.evaluate)(spec, reproduce_options(results, out, device, data_root))
    if path is None:
        raise ActionBenchError(f"the re-run in {out} did not finish (units left for other shards); finish it with "
                               f"`actionbench judge --out {out}` and compare with `actionbench compare`")
    report = compare_reproduction(results, read_json(path, "results file"))
    report["results_file"] = str(path)
    return report


def compare_reproduction(entry: Mapping, new: Mapping) -> dict:
    """Whether each of action, subject and total of ``new`` falls inside ``entry``'s 95 % clustered interval.

    Returns:
        ``{"reproduced", "same_spec", "spec_differences", "entry_interval", "metrics": {metric: {"entry",
        "entry_ci95", "new", "new_ci95", "inside"}}, "paired": {metric: {"difference", "ci95", "p_value"}} or
        None, "new_machine"}``.
    """
    from actionbench.results.compare import IncomparableRunsError, compare_results

    entry_metrics, interval = display_metrics(entry)
    new_metrics = new["metrics"]
    metrics = {}
    for m in METRICS:
        low, high = entry_metrics[m]["ci95"]
        value = new_metrics[m]["mean"]
        metrics[m] = {"entry": entry_metrics[m]["mean"], "entry_ci95": [low, high], "new": value,
                      "new_ci95": new_metrics[m].get("ci95"), "inside": low - SLACK <= value <= high + SLACK}
    spec_a, spec_b = entry["spec"], new["spec"]
    differences = sorted(k for k in set(spec_a) | set(spec_b) if spec_a.get(k) != spec_b.get(k))
    try:
        paired = compare_results(new, entry)["metrics"]
        paired = {m: {k: paired[m][k] for k in ("difference", "ci95", "p_value")} for m in METRICS}
    except (IncomparableRunsError, ValueError):
        paired = None
    machine = (new.get("provenance") or {}).get("machine") or {}
    return {"reproduced": all(v["inside"] for v in metrics.values()), "same_spec": not differences,
            "spec_differences": differences, "entry_interval": interval, "metrics": metrics, "paired": paired,
            "new_machine": machine.get("summary") if isinstance(machine, Mapping) else None}


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def format_report(report: Mapping, entry_name: str = "entry") -> str:
    """The lines ``actionbench reproduce`` prints: both runs' numbers, the interval test, the paired difference."""
    lines = [f"{'metric':<8} {entry_name + ' (interval)':>32} {'re-run':>8} {'inside':>7}"
             + ("  re-run - entry [95% paired]" if report.get("paired") else "")]
    for m, values in report["metrics"].items():
        low, high = values["entry_ci95"]
        line = (f"{m:<8} {_pct(values['entry']) + f' [{_pct(low)}, {_pct(high)}]':>32} {_pct(values['new']):>8} "
                f"{'yes' if values['inside'] else 'NO':>7}")
        if report.get("paired"):
            p = report["paired"][m]
            line += f"  {100 * p['difference']:+.2f} [{100 * p['ci95'][0]:+.2f}, {100 * p['ci95'][1]:+.2f}]"
        lines.append(line)
    lines.append(f"entry's interval: {report['entry_interval']}")
    if not report["same_spec"]:
        lines.append(f"the re-run's spec differs from the entry's in: {', '.join(report['spec_differences'])} "
                     "(e.g. another method or package version); the numbers may differ for that reason")
    if report.get("new_machine"):
        lines.append(f"re-run on: {report['new_machine']}")
    lines.append("REPRODUCED: every number falls inside the entry's interval" if report["reproduced"] else
                 "NOT REPRODUCED: " + ", ".join(m for m, v in report["metrics"].items() if not v["inside"])
                 + " fall outside the entry's interval")
    return "\n".join(lines)
