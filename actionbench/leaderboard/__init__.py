"""Leaderboard: validate results files, keep copies, draw image grids, render Markdown / CSV / HTML.

- ``validate``: what may enter a board (results files, checked by ``actionbench.results``; the
  paper's ``reported.json``).
- ``grids``: a run's image grid at native size.
- ``tables``: the rows of a board as one pandas DataFrame, grouped and ranked.
- ``render``: adding a run to a board folder, and the CSV, Markdown and HTML from that frame.

Ranking rule: rows are grouped by dataset, backbone and judge (name, version and model) and
never ranked across groups (see ``tables``). The paper's rows form their own judge group.

Public API: ``validate_results``, ``load_valid_results``, ``make_grid``, ``add_result``,
``render_leaderboard``, ``personal_board_dir``, ``ValidationError``.
"""
from __future__ import annotations

from .grids import make_grid
from .render import (
    PROJECT_BOARD,
    add_result,
    default_name,
    personal_board_dir,
    render_csv,
    render_html,
    render_leaderboard,
    render_markdown,
)
from .tables import board_frame, collect_rows, load_reported
from .validate import (
    REPORTED_FILE,
    RESULTS_FILE,
    ValidationError,
    load_valid_results,
    resolve_results_path,
    validate_results,
)

__all__ = [
    "PROJECT_BOARD", "REPORTED_FILE", "RESULTS_FILE", "ValidationError", "add_result", "board_frame", "collect_rows",
    "default_name", "load_reported", "load_valid_results", "make_grid", "personal_board_dir", "render_csv",
    "render_html", "render_leaderboard", "render_markdown", "resolve_results_path", "validate_results",
]
