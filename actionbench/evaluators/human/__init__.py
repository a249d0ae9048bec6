"""Human evaluation: a SQLite label store, a blinded local annotation page, and the ``human`` judge.

- ``store``: the label store (``LabelStore``), item ids, majority votes;
- ``interchange``: CSV and Label Studio import and export;
- ``server``: the annotation page's logic (``AnnotationApp``) and its local HTTP server;
- ``judge``: the ``human`` judge (``HumanJudge``);
- ``cli``: the ``annotate``, ``judge-human``, ``agreement``, ``export-labels`` and ``import-labels``
  commands.

See ``docs/human-eval.md``.
"""
from __future__ import annotations

from .interchange import export_labels, import_labels, read_csv_labels, read_labelstudio
from .judge import HumanJudge, clear_judgments
from .server import AnnotationApp, make_server
from .store import (DEFAULT_DB, LABELS_DB_ENV, QUESTIONS, TIE_RULES, Item, LabelStore, check_annotator,
                    check_question, check_ties, majority, make_item_id, pixel_sha256)

__all__ = [
    "DEFAULT_DB", "LABELS_DB_ENV", "QUESTIONS", "TIE_RULES", "AnnotationApp", "HumanJudge", "Item", "LabelStore",
    "check_annotator", "check_question", "check_ties", "clear_judgments", "export_labels", "import_labels",
    "majority", "make_item_id", "make_server", "pixel_sha256", "read_csv_labels", "read_labelstudio",
]
