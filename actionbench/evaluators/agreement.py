"""Agreement: between human annotators (Cohen's / Fleiss' kappa, Krippendorff's alpha) and between
automatic judges and humans.

* **Inter-annotator**, per question (``subject``, ``action``): with exactly two annotators,
  Cohen's kappa over the images both answered; with three or more, Fleiss' kappa over the
  images answered by at least two of them (its general form for a varying number of raters per
  image, ``agreement_stats.fleiss_kappa``). Krippendorff's alpha (nominal) for any number of
  annotators, over the images answered by at least two.
* **Judge vs. humans**: every automatic judge whose judgments exist in a run folder
  (``judgments/<judge>-v<version>/``) against the human majority of each image (ties by the
  ``ties`` rule: ``no``, ``yes``, or ``exclude`` to leave tied images out): accuracy,
  Cohen's kappa and the confusion matrix per question (``action``, ``subject`` and
  ``total`` = both), overall, per action, per subject category and for people vs animals.

Every statistic has a 95 % interval (``agreement_stats``: Wilson for accuracies, a bootstrap over
images for kappas and alphas). A statistic is ``None`` where it is undefined (every label the same,
so chance agreement is 1).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from actionbench.errors import ActionBenchError

from .agreement_stats import (  # noqa: F401 - cohen_kappa and fleiss_kappa are part of this module's API
    INTERVALS,
    binary_kappa_ci,
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_ci,
    krippendorff_alpha,
    krippendorff_alpha_ci,
    wilson,
)
from .human.store import DEFAULT_DB, LABELS_DB_ENV, QUESTIONS, LabelStore, check_ties, majority

JUDGE_QUESTIONS = ("action", "subject", "total")


# --- judge against humans, per question --------------------------------------------------------

def confusion(pred: Sequence[bool], truth: Sequence[bool]) -> dict[str, int]:
    """Counts of judge (pred) against human (truth) answers."""
    c = Counter(zip(map(bool, pred), map(bool, truth)))
    return {"judge_yes_human_yes": c[(True, True)], "judge_yes_human_no": c[(True, False)],
            "judge_no_human_yes": c[(False, True)], "judge_no_human_no": c[(False, False)]}


def binary_agreement(pred: Sequence[bool], truth: Sequence[bool], images: Sequence[str] | None = None) -> dict:
    """Accuracy (Wilson interval), Cohen's kappa (bootstrap interval over ``images``, default one per
    row) and the confusion matrix of a judge's answers (``pred``) against the humans' (``truth``)."""
    n = len(pred)
    pred, truth = [bool(p) for p in pred], [bool(t) for t in truth]
    right = sum(p == t for p, t in zip(pred, truth))
    return {
        "n": n,
        "accuracy": (right / n) if n else None,
        "accuracy_ci95": wilson(right, n),
        "kappa": cohen_kappa(pred, truth),
        "kappa_ci95": binary_kappa_ci(pred, truth, list(range(n)) if images is None else images),
        "confusion": confusion(pred, truth),
    }


# --- inter-annotator -------------------------------------------------------------------------------


def inter_annotator(labels: Mapping[str, Mapping[str, Mapping[str, bool]]]) -> dict[str, dict]:
    """Per question: Cohen's (two annotators) or Fleiss' kappa (three or more) and Krippendorff's alpha,
    each with a bootstrap interval over images, the observed agreement and counts.

    ``labels`` is ``LabelStore.labels()``: item -> question -> annotator -> answer.
    """
    out = {}
    for question in QUESTIONS:
        by_item = {i: q[question] for i, q in labels.items() if q.get(question)}
        annotators = sorted({a for votes in by_item.values() for a in votes})
        shared = {i: v for i, v in sorted(by_item.items()) if len(v) >= 2}
        report: dict[str, Any] = {
            "annotators": len(annotators), "items_labelled": len(by_item),
            "labels": sum(len(v) for v in by_item.values()), "items": len(shared), "method": None, "kappa": None,
            "kappa_ci95": None, "observed_agreement": None, "alpha": None, "alpha_ci95": None,
        }
        if len(annotators) == 2 and shared:
            a, b = annotators
            first, second = [v[a] for v in shared.values()], [v[b] for v in shared.values()]
            report.update(method="cohen", kappa=cohen_kappa(first, second),
                          kappa_ci95=binary_kappa_ci(first, second, list(shared)),
                          observed_agreement=sum(x == y for x, y in zip(first, second)) / len(first))
        elif len(annotators) > 2 and shared:
            table = [[sum(v.values()), len(v) - sum(v.values())] for v in shared.values()]
            report.update(method="fleiss", kappa=fleiss_kappa(table), kappa_ci95=fleiss_kappa_ci(table),
                          observed_agreement=sum((y * y + n * n - (y + n)) / ((y + n) * (y + n - 1))
                                                 for y, n in table) / len(table))
            sizes = [len(v) for v in shared.values()]
            report["raters_per_item"] = {"min": min(sizes), "max": max(sizes), "mean": sum(sizes) / len(sizes)}
        else:
            report["note"] = "needs at least two annotators answering the same images"
        if shared:
            ratings = [[float(v[rater]) if rater in v else float("nan") for v in shared.values()]
                       for rater in annotators]
            report.update(alpha=krippendorff_alpha(ratings), alpha_ci95=krippendorff_alpha_ci(ratings))
        out[question] = report
    return out


# --- judges against humans -------------------------------------------------------------------------


def judge_keys(run_dir: str | Path) -> list[str]:
    """Automatic judges with judgments in a run folder (``judgments/<judge>-v<version>``), not ``human``."""
    folder = Path(run_dir) / "judgments"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("human-", ".")))


def _human_truth(store: LabelStore, item_ids: Iterable[str], ties: str) -> dict[str, dict[str, bool | None]]:
    """item id -> {"action": majority, "subject": majority, "total": both} (None: no labels or excluded tie)."""
    out = {}
    for item_id, by_question in store.labels(item_ids).items():
        row: dict[str, bool | None] = {}
        for question in QUESTIONS:
            votes = list(by_question.get(question, {}).values())
            row[question] = majority(votes, ties) if votes else None
        row["total"] = None if row["action"] is None or row["subject"] is None else (row["action"] and row["subject"])
        out[item_id] = row
    return out


def _pairs(store: LabelStore, run, key: str, ties: str) -> list[dict]:
    """Per judged and human-labelled image: the judge's and the humans' answers."""
    from actionbench.io import read_json

    items = store.unit_items(run)
    truth = _human_truth(store, items.values(), ties)
    rows = []
    for unit in run.units():
        path = run.judgment_path(key, unit)
        if unit.id not in items or not path.is_file():
            continue
        human = truth.get(items[unit.id])
        if human is None:
            continue
        verdict = read_json(path, "judgment")
        judge = {"action": bool(verdict["action_ok"]), "subject": bool(verdict["subject_ok"])}
        judge["total"] = judge["action"] and judge["subject"]
        rows.append({"unit_id": unit.id, "action_id": unit.action_id, "item_id": items[unit.id], "judge": judge,
                     "human": human, "category": run.dataset.subject(unit.subject_id).category})
    return rows


def _summarise(rows: Sequence[Mapping]) -> dict:
    out = {}
    for question in JUDGE_QUESTIONS:
        usable = [r for r in rows if r["human"][question] is not None]
        out[question] = binary_agreement([r["judge"][question] for r in usable],
                                         [r["human"][question] for r in usable], [r["item_id"] for r in usable])
    return out


def people_or_animals(category: str) -> str:
    """The coarse group a subject category belongs to: human and personality subjects are people."""
    return {"human": "people", "personality": "people", "animal": "animals"}.get(category, category)


def compare_judge(rows: Sequence[Mapping]) -> dict:
    """Overall, per-action, per-subject-category and people-vs-animals agreement of one judge's rows
    (from ``_pairs``; rows without a ``category`` are left out of the last two)."""
    report = _summarise(rows)
    for name, group_of in (("per_action", lambda r: r["action_id"]), ("per_category", lambda r: r.get("category")),
                           ("people_vs_animals", lambda r: r.get("category") and people_or_animals(r["category"]))):
        groups: dict[str, list] = {}
        for row in rows:
            if group_of(row):
                groups.setdefault(group_of(row), []).append(row)
        report[name] = {group: _summarise(members) for group, members in groups.items()}
    return report


def human_agreement_for(run, judge_key: str, db: str | Path, ties: str = "no") -> dict:
    """How a run's judgments by ``judge_key`` agree with the human majority in ``db``.

    ``run`` is a ``Run`` or a run folder. Returns ``{}`` when the database does not exist or
    holds no label for any of the run's images; otherwise ``{"db", "ties", "annotators", "n",
    "action"/"subject"/"total": {"n", "accuracy", "accuracy_ci95", "kappa", "kappa_ci95", "confusion"},
    "per_action", "per_category", "people_vs_animals": {group: {"action"/"subject"/"total": ...}},
    "per_unit": {unit_id: {"action": bool|None, "subject": bool|None, "total": ...}}}`` where
    ``per_unit`` holds the human majority of every labelled image (for the results records).
    """
    from actionbench.run.runner import Run, open_existing_run

    check_ties(ties)
    db = Path(db)
    if not db.is_file():
        return {}
    if not isinstance(run, Run):
        run = open_existing_run(run)
    store = LabelStore(db, create=False)
    items = store.unit_items(run)
    truth = _human_truth(store, items.values(), ties)
    per_unit = {u: truth[i] for u, i in items.items() if i in truth}
    if not per_unit:
        return {}
    rows = _pairs(store, run, judge_key, ties)
    labels = store.labels(items.values())
    return {
        "db": str(db.resolve()), "ties": ties, "judge": judge_key,
        "annotators": len({a for q in labels.values() for votes in q.values() for a in votes}),
        "n": len(rows), **compare_judge(rows), "per_unit": per_unit,
    }


def agreement_report(db: str | Path, run_dirs: Sequence[str | Path] = (), ties: str = "no",
                     data_root: str | Path | None = None) -> dict:
    """Inter-annotator agreement of the whole database, and every automatic judge found in the
    run folders (default: those recorded by ``annotate``) against the human majority."""
    from actionbench.run.runner import open_existing_run

    check_ties(ties)
    store = LabelStore(db, create=False)
    labels = store.labels()
    if not labels:
        raise ActionBenchError(f"{db} holds no labels yet; annotate with `actionbench annotate RUN_DIR --db {db}`")
    if not run_dirs:
        run_dirs = [p for p in store.run_dirs() if (p / "spec.json").is_file()]
    judges: dict[str, dict] = {}
    rows_by_key: dict[str, list] = {}
    runs_by_key: dict[str, list] = {}
    for run_dir in run_dirs:
        run = open_existing_run(run_dir, data_root=data_root)
        for key in judge_keys(run.out):
            rows = _pairs(store, run, key, ties)
            if rows:
                rows_by_key.setdefault(key, []).extend(rows)
                runs_by_key.setdefault(key, []).append(str(run.out))
    for key, rows in sorted(rows_by_key.items()):
        judges[key] = {"runs": runs_by_key[key], **compare_judge(rows)}
    return {
        "db": str(Path(db).resolve()),
        "ties": ties,
        "annotators": store.annotators(),
        "items_labelled": len(labels),
        "runs": [str(Path(r)) for r in run_dirs],
        "inter_annotator": inter_annotator(labels),
        "judges": judges,
        "intervals": dict(INTERVALS),
    }


# --- printing --------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.000"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [list(header)] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _with_ci(value: Any, ci: Sequence[float] | None) -> str:
    """``0.412 [0.301, 0.520]``: a statistic and its 95 % interval."""
    return _fmt(value) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")


def _breakdown(report: Mapping, part: str, label: str) -> list[str]:
    """One judge-vs-human table per breakdown (per action, per category, people vs animals)."""
    rows = []
    for key, r in report["judges"].items():
        for group, g in r.get(part, {}).items():
            rows.append([key, group, g["action"]["n"],
                         *(_with_ci(g[q]["accuracy"], g[q]["accuracy_ci95"]) for q in JUDGE_QUESTIONS)])
    return _table(["judge", label, "n", *(f"{q} accuracy" for q in JUDGE_QUESTIONS)], rows)


def format_report(report: Mapping) -> str:
    """The agreement report as plain-text tables (95 % intervals in brackets)."""
    lines = [f"Inter-annotator agreement ({len(report['annotators'])} annotators, "
             f"{report['items_labelled']} images labelled)"]
    rows = []
    for question, r in report["inter_annotator"].items():
        rows.append([question, r["method"] or "-", _with_ci(r["kappa"], r.get("kappa_ci95")),
                     _with_ci(r.get("alpha"), r.get("alpha_ci95")), r["observed_agreement"], r["items"],
                     r["annotators"], r["labels"]])
    lines += _table(["question", "method", "kappa", "Krippendorff alpha", "agree", "items", "annotators", "labels"],
                    rows)
    lines.append("")
    if not report["judges"]:
        lines.append("No automatic judgments of labelled images found in the run folders "
                     "(judge a run with `actionbench judge --out RUN`).")
        return "\n".join(lines)
    lines.append(f"Automatic judges vs. human majority (ties -> {report['ties']})")
    rows = []
    for key, r in report["judges"].items():
        for question in JUDGE_QUESTIONS:
            q = r[question]
            c = q["confusion"]
            rows.append([key, question, q["n"], _with_ci(q["accuracy"], q["accuracy_ci95"]),
                         _with_ci(q["kappa"], q["kappa_ci95"]), c["judge_yes_human_yes"],
                         c["judge_yes_human_no"], c["judge_no_human_yes"], c["judge_no_human_no"]])
    lines += _table(["judge", "question", "n", "accuracy", "kappa", "J+H+", "J+H-", "J-H+", "J-H-"], rows)
    for part, label, title in (("per_action", "action", "Per action"),
                               ("people_vs_animals", "subjects", "People vs animals"),
                               ("per_category", "category", "Per subject category")):
        lines += ["", f"{title} (accuracy against the human majority)", *_breakdown(report, part, label)]
    intervals = report.get("intervals") or INTERVALS
    lines += ["", f"95 % intervals: accuracy by {intervals['accuracy']}; kappa and alpha by {intervals['kappa_alpha']}."]
    return "\n".join(lines)


# --- the results hook: every automatic result states how its judge agrees with people -----------


def labels_db_for(run) -> Path | None:
    """Where human labels for this run live, if anywhere: $ACTIONBENCH_LABELS_DB, ./labels.sqlite, OUT/labels.sqlite."""
    import os

    for candidate in (os.environ.get(LABELS_DB_ENV), DEFAULT_DB, run.out / DEFAULT_DB):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def attach_human_agreement(run, evaluator, key: str, record: dict) -> None:
    """A results hook (``actionbench.api.registry.RESULT_HOOKS``): where human labels exist for the run,
    record how the automatic judge agrees with them (overall, and per image under ``human``)."""
    if getattr(evaluator, "human", False):
        return
    db = labels_db_for(run)
    if db is None:
        return
    report = human_agreement_for(run, key, db)
    if not report:
        return
    per_unit = report.pop("per_unit")
    record["human_agreement"] = report
    for row in record["records"]:
        if row["unit_id"] in per_unit:
            row["human"] = per_unit[row["unit_id"]]
