"""Leak on the leaderboard and grids that show every subject category.

Judges that read an image's context (mini-v2) record per image whether it leaks the target action's
context signature; the board shows leak, leak on animals and total clean beside total (ranking stays by
total), and leaves the tables of other judges as they were. Grids pick their columns across the subject
categories, so ActionBench's animals (listed after 8 humans) are seen, and mark right-but-leaking images.
"""
import csv
import json
import shutil
from pathlib import Path

import pytest
from run_fixtures import ColourJudge, make_run

from actionbench.api.evaluator import image_of
from actionbench.leaderboard import add_result, board_frame, collect_rows, render_leaderboard
from actionbench.run.grid import GREEN, ORANGE, RED, choose_subjects, make_grid

REPO = Path(__file__).resolve().parent.parent
ACTIONS = ("cheer", "gesture", "handstand", "meditate", "pray", "salute", "sit", "squat")  # synthetic, in order
OLD_HEADER = "| # | method | action % | subject % | total % | n | seeds | preset | run | machine | run date | " \
             "spec hash | status |"
OLD_ALIGN = "|---:|---|---:|---:|---:|---:|---:|---|---|---|---|---|---|"
LEAK_HEADER = "| # | method | action % | subject % | total % | leak % | leak on animals % | total clean % | n | seeds | " \
              "preset | run | machine | run date | spec hash | status |"


class ContextJudge(ColourJudge):
    """The colour judge that also reads context, as mini-v2 does: on a reddish image (``shade`` >= 128) it
    sees the signature of cheer and gesture, and of sit on animals; ``total_clean`` as mini-v2 defines it."""

    name = "colour-context"
    per_image_metrics = ("leak", "total_clean")

    def judge(self, requests):
        animals = {s.id for s in self.dataset.subjects if s.category == "animal"}
        out = ColourJudge.judge(self, requests)
        for request, judgment in zip(requests, out):
            reddish = image_of(request).getpixel((0, 0))[0] >= 128
            leak = reddish and (request.action_id in ("cheer", "gesture") or
                                (request.action_id == "sit" and request.subject_id in animals))
            judgment.detail.update(leak=leak, total_clean=judgment.action_ok and judgment.subject_ok and not leak)
        return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Runs made once: ``leaky`` (adi, wrong on gesture, leaking), ``clean`` (sd, wrong on gesture and
    squat, no leak), both judged by the context judge, and ``old`` (adi, the colour judge: no leak)."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "leaky": make_run(root, "leaky", lambda a, s, k, seed: a != "gesture", shade=200, judge=ContextJudge,
                          method="adi"),
        "clean": make_run(root, "clean", lambda a, s, k, seed: a not in ("gesture", "squat"), judge=ContextJudge,
                          method="sd"),
        "old": make_run(root, "old", lambda a, s, k, seed: k == 0, method="adi"),
    }


def load(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def cell_text(metric: dict) -> str:
    """A score cell as the tables print it: ``mean [lo, hi]`` in percent."""
    lo, hi = metric["ci95"]
    return f"{100 * metric['mean']:.2f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def tables_of(md: str) -> dict[str, list[str]]:
    """Judge label -> the lines of its Markdown table."""
    out = {}
    for part in md.split("### Judge: ")[1:]:
        label, _, rest = part.partition("\n")
        out[label] = [line for line in rest.strip().split("\n\n")[0].splitlines() if line.startswith("|")]
    return out


def test_leak_columns_in_markdown_csv_and_html_ranked_by_total(built, tmp_path):
    metrics = load(built["leaky"])["metrics"]
    assert (metrics["leak"]["mean"], metrics["per_category"]["animal"]["leak"]["mean"]) == \
        (pytest.approx(108 / 368), pytest.approx(48 / 128))  # cheer and gesture (92), sit on the 8 animals (16)
    assert metrics["total_clean"]["mean"] == pytest.approx(260 / 368)  # 322 right, 62 of them leaking
    board = tmp_path / "board"
    for key in ("clean", "leaky", "old"):
        add_result(built[key], board)
    written = render_leaderboard(board)

    tables = tables_of(written["markdown"].read_text())
    leak_table = tables["colour-context, version 1"]
    assert leak_table[:2] == [LEAK_HEADER, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---|---|"]
    adi, sd = leak_table[2], leak_table[3]  # by total: adi 87.5 first though its total clean (70.7) is sd's 75 below
    assert "| adi | " in adi and "| sd | " in sd
    expected = " | ".join(cell_text(m) for m in (metrics["total"], metrics["leak"],
                                                   metrics["per_category"]["animal"]["leak"], metrics["total_clean"]))
    assert f"| {expected} | 368 |" in adi and "87.50 [" in expected and "| 29.35 [" in adi and "| 37.50 [" in adi
    assert "| 75.00 [" in sd and "| 0.00 [0.0, 0.0] | 0.00 [0.0, 0.0] | 75.00 [" in sd
    assert tables["colour, version 1"][:2] == [OLD_HEADER, OLD_ALIGN]  # the old judge's table keeps its columns

    frame = board_frame(collect_rows(board))
    context = frame[frame["judge_name"] == "colour-context"]
    assert list(context["method"]) == ["adi", "sd"] and list(context["rank"]) == [1, 2]

    rows = {r["run_name"]: r for r in csv.DictReader(written["csv"].open())}
    leaky = rows["leaky"]
    assert (leaky["leak_pct"], leaky["leak_animal_pct"], leaky["total_clean_pct"]) == ("29.3478", "37.5", "70.6522")
    assert float(leaky["leak_ci_lo_pct"]) == pytest.approx(round(100 * metrics["leak"]["ci95"][0], 4))
    assert float(leaky["leak_animal_ci_hi_pct"]) == \
        pytest.approx(round(100 * metrics["per_category"]["animal"]["leak"]["ci95"][1], 4))
    leak_fields = [f for f in rows["old"] if f.startswith(("leak", "total_clean"))]
    assert len(leak_fields) == 9 and all(rows["old"][f] == "" for f in leak_fields)  # empty for the old judge

    page = written["html"].read_text()
    assert page.count('<table class="dataframe board leak">') == 1 and page.count('<table class="dataframe board">') == 1
    assert "<th>leak on animals %</th>" in page and "<b>Leak</b>: the share of images" in page
    assert ".leak td:nth-child(13),.leak td:nth-child(16){white-space:normal" in page  # machine, status still wrap


def test_a_board_of_old_results_renders_without_leak_columns(built, tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    shutil.copy(REPO / "leaderboard" / "reported.json", board / "reported.json")
    add_result(built["old"], board)
    written = render_leaderboard(board)
    md = written["markdown"].read_text()
    tables = tables_of(md)
    assert set(tables) == {"colour, version 1", "paper (unspecified, likely human)"}
    for lines in tables.values():
        assert lines[:2] == [OLD_HEADER, OLD_ALIGN] and not any("leak" in line for line in lines)
    assert tables["colour, version 1"][2].startswith("| 1 | adi | 50.00 [50.0, 50.0] | 50.00 [50.0, 50.0] | "
                                                    "50.00 [50.0, 50.0] | 368 | 1 | - | old | ")
    assert "- **Leak**: the share of images" in md  # how to read it, on every board
    page = written["html"].read_text()
    assert page.count('<table class="dataframe board">') == 2 and "board leak" not in page
    assert "<th>leak %</th>" not in page and "orange" not in page
    rows = list(csv.DictReader(written["csv"].open()))
    assert all(r["leak_pct"] == r["leak_animal_pct"] == r["total_clean_pct"] == "" for r in rows)


def grid_cells(grid, rows: int, columns: int, x: int, y: int):
    """The pixel at (x, y) of every cell of a native grid: 64-pixel labels, 16-pixel images in 22-pixel cells."""
    cell, top = 16 + 2 * 3, grid.height - rows * 22
    assert grid.width == 64 + columns * cell
    return [[grid.getpixel((64 + j * cell + x, top + i * cell + y)) for j in range(columns)] for i in range(rows)]


def test_grid_columns_cover_every_subject_category(built):
    data = load(built["leaky"])
    categories = {c: block["subjects"] for c, block in data["metrics"]["per_category"].items()}
    assert [len(categories[c]) for c in ("human", "personality", "animal")] == [8, 7, 8]  # 23 subjects
    grid = make_grid(built["leaky"])
    borders = grid_cells(grid, 8, 8, 1, 1)  # 8 subjects shown of 23
    sit = borders[ACTIONS.index("sit")]  # sit leaks on animals only: orange there, green elsewhere
    assert sit == [GREEN] * 6 + [ORANGE] * 2  # 3 humans, 3 personalities, then 2 animals (record order)

    subjects = [s for c in ("human", "personality", "animal") for s in categories[c]]
    by_subject = {s: c for c, members in categories.items() for s in members}
    assert choose_subjects(subjects, by_subject, 8) == ["man", "woman", "boy", "michael_jackson", "david_beckham",
                                                        "barack_obama", "monkey", "cat"]
    assert choose_subjects(subjects, {}, 3) == ["man", "woman", "boy"]  # no categories: record order
    assert choose_subjects(subjects[:5], by_subject, 8) == subjects[:5]  # all fit: all shown


def test_grid_marks_right_but_leaking_images_orange(built):
    grid = make_grid(built["leaky"], max_subjects=3)  # man, michael_jackson, monkey
    borders = grid_cells(grid, 8, 3, 1, 1)
    assert borders[ACTIONS.index("cheer")] == [ORANGE] * 3  # right, leaking
    assert borders[ACTIONS.index("gesture")] == [RED] * 3  # wrong (and leaking): red
    assert borders[ACTIONS.index("sit")] == [GREEN, GREEN, ORANGE]  # sit leaks on the animal only
    assert borders[ACTIONS.index("squat")] == [GREEN] * 3
    assert grid_cells(grid, 8, 3, 6, 6)[0][0] == (200, 255, 255)  # the image itself: shade 200, all right
    old = grid_cells(make_grid(built["old"], max_subjects=3), 8, 3, 1, 1)
    assert ORANGE not in {color for row in old for color in row}  # no leak recorded: never orange
