"""The ``human`` judge: the majority of the stored human labels of each image."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

from actionbench.errors import ActionBenchError, ConfigError
from actionbench.api.evaluator import Evaluator, JudgeRequest, Judgment

from .store import DEFAULT_DB, LABELS_DB_ENV, QUESTIONS, LabelStore, check_ties

def _run_dir_of(image: Any) -> Path | None:
    """OUT for an image at OUT/images/<action>/<subject>/<k>.png, else None."""
    if not isinstance(image, (str, Path)):
        return None
    path = Path(image).resolve()
    if len(path.parents) > 3 and path.parents[2].name == "images" and (path.parents[3] / "spec.json").is_file():
        return path.parents[3]
    return None


class HumanJudge(Evaluator):
    """Majority of stored human labels (``actionbench annotate``); needs labels for every image.

    Options:
        db: the labels database (default: ``$ACTIONBENCH_LABELS_DB``, else ``labels.sqlite`` in the
            current folder). ``actionbench judge --judge human`` takes it from the environment
            variable; ``actionbench judge-human --db`` passes it directly.
        ties: what a tied vote counts as: ``no`` (default: not shown), ``yes``, or ``exclude``
            (a tied image counts as unlabelled, and judging stops with an error naming it).

    An image is matched to its labels by the hash of its pixels and its target (action,
    subject), so copies of a run folder keep their labels. Images without labels for both
    questions stop judging before anything is written, with the count and the command that
    annotates them. ``detail`` records the votes of each image.
    """

    name: ClassVar[str] = "human"
    VERSION: ClassVar[str] = "1"
    human: ClassVar[bool] = True
    reads_subject_words: ClassVar[bool] = True  # annotators read the subject's name on the page

    def __init__(self, dataset, device: str = "cpu", db: str | Path | None = None, ties: str = "no", **options: Any):
        super().__init__(dataset, device=device, **options)
        if options:
            raise ConfigError(f"unknown option(s) for judge 'human': {', '.join(sorted(options))}; "
                              "valid options: db, ties")
        self.db = Path(db or os.environ.get(LABELS_DB_ENV) or DEFAULT_DB)
        self.ties = check_ties(ties)
        self._store: LabelStore | None = None
        self._checked_runs: set[Path] = set()

    @property
    def store(self) -> LabelStore:
        if self._store is None:
            self._store = LabelStore(self.db, create=False)
        return self._store

    def describe(self) -> dict:
        record = {"name": self.name, "version": self.VERSION, "human": True, "db": str(self.db.resolve()),
                  "ties": self.ties, "decision": "majority of annotators per question"}
        if self.db.exists():
            record.update(self.store.fingerprint())
        return record

    def _verdicts(self, requests: Sequence[JudgeRequest]) -> tuple[list[tuple[str, dict]], list[JudgeRequest]]:
        ids = self.store.item_ids_of(self.dataset.name, [(r.action_id, r.subject_id, r.image) for r in requests])
        labels = self.store.majority_labels(self.ties, ids)
        out, missing = [], []
        for request, item_id in zip(requests, ids):
            row = labels.get(item_id)
            if row is None or any(row[q] is None for q in QUESTIONS):
                missing.append(request)
            out.append((item_id, row))
        return out, missing

    def _check_whole_run(self, run_dir: Path) -> None:
        """Fail before any judgment is written if any image of the run lacks labels."""
        from actionbench.run.runner import Run

        if run_dir in self._checked_runs:
            return
        run = Run(run_dir, None, self.dataset)
        units = [u for u in run.units() if run.image_path(u).is_file()]
        requests = [JudgeRequest(u.id, u.action_id, u.subject_id, run.image_path(u)) for u in units]
        _, missing = self._verdicts(requests)
        if missing:
            self._missing_error(missing, len(requests), run_dir)
        self._checked_runs.add(run_dir)

    def _missing_error(self, missing: Sequence[JudgeRequest], total: int, run_dir: Path | None) -> None:
        what = "images" if total != 1 else "image"
        tie = " (or only tied votes, with ties=exclude)" if self.ties == "exclude" else ""
        where = f" of {run_dir}" if run_dir else ""
        target = str(run_dir) if run_dir else "RUN_DIR"
        raise ActionBenchError(
            f"{len(missing)} of {total} {what}{where} have no human label for both questions{tie} in {self.db} "
            f"(first: {missing[0].unit_id}); annotate them with `actionbench annotate {target} --db {self.db}` "
            "and judge again"
        )

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        requests = list(requests)
        for r in requests:
            self.dataset.action(r.action_id)
            self.dataset.subject(r.subject_id)
        for run_dir in {d for d in (_run_dir_of(r.image) for r in requests) if d is not None}:
            self._check_whole_run(run_dir)
        verdicts, missing = self._verdicts(requests)
        if missing:
            self._missing_error(missing, len(requests), None)
        out = []
        for request, (item_id, row) in zip(requests, verdicts):
            detail = {"item_id": item_id, "ties": self.ties}
            for q in QUESTIONS:
                yes, no = row[f"{q}_votes"]
                detail[f"{q}_yes"], detail[f"{q}_no"] = yes, no
            out.append(Judgment(request.unit_id, bool(row["action"]), bool(row["subject"]), detail))
        return out


def clear_judgments(run_dir: str | Path, key: str) -> None:
    """Remove a run's judgments of one judge key (moved aside first, so a crash never leaves half)."""
    import shutil
    import uuid

    folder = Path(run_dir) / "judgments" / key
    if folder.is_dir():
        from actionbench.io import TMP_MARKER

        aside = folder.with_name(f"{TMP_MARKER}{uuid.uuid4().hex[:8]}-{key}")
        os.replace(folder, aside)
        shutil.rmtree(aside, ignore_errors=True)
