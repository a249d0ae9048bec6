"""Leaderboard: validate results files, keep copies, draw image grids, render Markdown / CSV / HTML.

- ``validate``: what may enter a board (results files, checked by ``actionbench.results.check`` and,
  against their run folder, ``actionbench.results.verify``; the paper's ``reported.json``), and
  why an entry is not a full one (``entry_caveats``).
- ``entries``: adding a run (checked against its run folder; never replacing an entry without
  ``replace``) and the ``verified`` records a re-judging keeps beside an entry.
- ``ranks``: rank ranges from paired clustered comparisons.
- ``tables``: the rows of a board as one pandas DataFrame, grouped and ranked.
- ``charts``, ``render``: the CSV, Markdown and HTML from that frame.
- ``rejudge``, ``reproduce``: re-judging an entry's images, re-running an entry's spec (they
  use the runner, so they are imported by name, not from here).

Ranking rule: rows are grouped by dataset, backbone and judge (name, version and model) and
never ranked across groups (see ``tables``). The paper's rows form their own judge group.

A run's image grid is drawn by ``actionbench.run.grid`` (the runner draws one into every run folder);
the page shows each at a whole multiple of its size (``tables.display_width``).

Public API: ``validate_results``, ``validate_run``, ``load_valid_results``, ``add_result``,
``render_leaderboard``, ``personal_board_dir``, ``ValidationError``.
"""
from __future__ import annotations

from .entries import PROJECT_BOARD, add_result, default_name, resolve_entry, write_verified
from .render import (
    personal_board_dir,
    render_csv,
    render_html,
    render_leaderboard,
    render_markdown,
)
from .tables import board_frame, collect_rows, load_reported
from .validate import (
    REPORTED_FILE,
    ValidationError,
    entry_caveats,
    load_valid_results,
    validate_results,
    validate_run,
)

__all__ = [
    "PROJECT_BOARD", "REPORTED_FILE", "ValidationError", "add_result", "board_frame", "collect_rows",
    "default_name", "entry_caveats", "load_reported", "load_valid_results", "personal_board_dir",
    "render_csv", "render_html", "render_leaderboard", "render_markdown", "resolve_entry",
    "validate_results", "validate_run", "write_verified",
]
