"""Leaderboard: validation, grids, adding runs, rendering Markdown / CSV / HTML with the paper's rows."""
import copy
import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from run_fixtures import ColourJudgeV2, copy_run, make_run

from actionbench.errors import ConfigError
from actionbench.io import atomic_write_json
from actionbench.leaderboard import (
    ValidationError,
    add_result,
    load_valid_results,
    render_leaderboard,
    validate_results,
)
from actionbench.leaderboard.tables import display_width, image_width
from actionbench.results.metrics import compute_metrics
from actionbench.results.check import check_results
from actionbench.results.record import build_results, image_record
from actionbench.run.grid import make_grid

REPO = Path(__file__).resolve().parent.parent
ACTIONS = ("cheer", "sit", "squat")
SUBJECTS = ("man", "cat")
COLOURS = {"cheer": (230, 90, 40), "sit": (40, 120, 230), "squat": (140, 60, 180)}


def make_grid_run(root: Path, name: str, right=lambda a, s, k: True, drop_image: str | None = None) -> Path:
    """A small run folder for grid drawing only: 3 actions x 2 subjects, one colour per action."""
    from PIL import Image, ImageDraw

    run = root / name
    records = []
    for a in ACTIONS:
        for s in SUBJECTS:
            for k in range(2):
                rel = f"images/{a}/{s}/{k}.png"
                if rel != drop_image:
                    image = Image.new("RGB", (32, 32), COLOURS[a])
                    ImageDraw.Draw(image).ellipse([8, 8, 24, 24], fill=(255, 255, 255) if s == "man" else (0, 0, 0))
                    (run / rel).parent.mkdir(parents=True, exist_ok=True)
                    image.save(run / rel)
                ok = right(a, s, k)
                records.append({"unit_id": f"{a}/{s}/{k}", "action_id": a, "subject_id": s, "k": k, "seed": 7 + k,
                                "image": rel, "action_ok": ok, "subject_ok": ok, "detail": {}})
    results = {"schema_version": 1, "run_name": name, "spec": {"method": "adi"}, "judge": {"name": "tiny",
               "version": "1"}, "metrics": compute_metrics(records), "records": records}
    atomic_write_json(run / "results.json", results)
    return run


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Three full runs of the synthetic protocol, made once: adi all right, sd right on k=0 only, and
    textual inversion right on cheer only, judged by another judge version."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "good": make_run(root, "good", method="adi"),
        "half": make_run(root, "half", lambda a, s, k, seed: k == 0, method="sd"),
        "newjudge": make_run(root, "newjudge", lambda a, s, k, seed: (a == "cheer", True), method="textual_inversion",
                             judge=ColourJudgeV2),
    }


@pytest.fixture
def runs(built, tmp_path):
    """Fresh copies of the built runs, to edit freely."""
    return {key: copy_run(path, tmp_path / "runs") for key, path in built.items()}


def load(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_valid_results_pass(runs):
    assert validate_results(runs["good"] / "results.json") == []
    assert validate_results(runs["good"] / "results.json", run_dir=runs["good"]) == []
    assert load_valid_results(load(runs["half"]))["run_name"] == "half"


def test_validate_catches_tampering_and_says_where(runs):
    data = load(runs["half"])
    tampered = copy.deepcopy(data)
    tampered["metrics"]["total"]["mean"] = 0.9
    problems = validate_results(tampered)
    assert any(p.startswith("metrics.total.mean is 0.9 but the records give 0.5") for p in problems)
    assert any("compute_metrics" in p for p in problems)

    wrong_version = dict(data, schema_version=3)
    [problem] = validate_results(wrong_version)
    assert "schema_version is 3" in problem and "upgrade actionbench" in problem

    duplicated = copy.deepcopy(data)
    duplicated["records"].append(copy.deepcopy(duplicated["records"][0]))
    problems = validate_results(duplicated)
    assert any("unit_id 'cheer/man/0' appears 2 times" in p for p in problems)
    assert any("metrics.n is 368 but there are 369 records" in p for p in problems)

    edited_spec = copy.deepcopy(data)
    edited_spec["spec"]["method_config"]["seed"] = 2000
    problems = validate_results(edited_spec)
    assert any(p.startswith("spec_hash is") for p in problems) and any("spec.config_hash" in p for p in problems)

    broken = copy.deepcopy(data)
    del broken["judge"]["version"]
    broken["records"][1]["action_ok"] = "yes"
    broken["records"][2]["image"] = "/abs/0.png"
    problems = validate_results(broken)
    assert any("judge.version is missing" in p for p in problems)
    assert any("records[1] (cheer/man/1).action_ok is 'yes'" in p for p in problems)
    assert any("relative to the run folder" in p for p in problems)

    with pytest.raises(ValidationError) as info:
        load_valid_results(tampered)
    assert "metrics.total.mean" in str(info.value) and info.value.problems


def test_grid_has_labels_and_judgment_borders(tmp_path):
    run = make_grid_run(tmp_path, "grid", right=lambda a, s, k: a != "sit", drop_image="images/squat/cat/0.png")
    cell = 96
    grid = make_grid(run, cell=cell)
    label_w, top = max(64, cell * 3 // 4), 18 + 16
    assert grid.size == (label_w + len(SUBJECTS) * cell, top + len(ACTIONS) * cell)
    assert grid.getpixel((label_w + 2, top + 2)) == (46, 160, 67)  # cheer/man: both right -> green border
    assert grid.getpixel((label_w + 2, top + cell + 2)) == (207, 34, 46)  # sit/man: wrong -> red
    assert grid.getpixel((label_w + 8, top + 8)) == COLOURS["cheer"]  # the image, scaled to the cell
    assert grid.getpixel((label_w + cell + 8, top + 2 * cell + 8)) == (225, 225, 225)  # missing image
    small = make_grid(run / "results.json", max_actions=1, max_subjects=1, cell=40)
    assert small.size == (64 + 40, top + 40)
    grid.save(tmp_path / "grid.png")


def test_grid_is_stored_at_native_size_not_upscaled(tmp_path):
    """Grids used to upscale 32-pixel images into ~700 KB files; now each image is pasted pixel for pixel."""
    from PIL import Image

    run = make_grid_run(tmp_path, "native", right=lambda a, s, k: a != "sit")
    grid = make_grid(run)
    cell, border, label_w, top = 32 + 2 * 3, 2, 64, 18 + 16  # 32-pixel image, 2-pixel border, 1-pixel gap
    assert grid.size == (label_w + len(SUBJECTS) * cell, top + len(ACTIONS) * cell)
    for i, a in enumerate(ACTIONS):
        for j, s in enumerate(SUBJECTS):
            x, y = label_w + j * cell + 1 + border, top + i * cell + 1 + border
            shown = grid.crop((x, y, x + 32, y + 32))
            assert shown.tobytes() == Image.open(run / f"images/{a}/{s}/0.png").convert("RGB").tobytes()
    assert grid.getpixel((label_w + 1, top + cell + 1)) == (207, 34, 46)  # sit/man: wrong -> red border
    grid.save(tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size < 5_000


def test_grid_writes_long_subject_names_upwards_at_native_size(tmp_path):
    run = make_grid_run(tmp_path, "long")
    data = load(run)
    for r in data["records"]:
        r["subject_id"] = {"man": "police_officer", "cat": "albert_einstein"}[r["subject_id"]]
    atomic_write_json(run / "results.json", data)
    grid = make_grid(run)
    assert grid.size[1] > 18 + 16 + len(ACTIONS) * 38  # a taller header holds the names written upwards


def test_add_result_copies_validates_and_draws(runs, tmp_path):
    board = tmp_path / "board"
    path = add_result(runs["good"] / "results.json", board)
    assert path.parent == board / "results"
    assert path.read_bytes() == (runs["good"] / "results.json").read_bytes()  # byte-for-byte copy
    grid = board / "grids" / f"{path.stem}.png"
    assert grid.is_file()
    assert add_result(runs["good"], board) == path  # the same file again: nothing changes
    with pytest.raises(ConfigError, match=f"entry '{path.stem}' already holds run 'good'.*--replace"):
        add_result(runs["half"], board, name=path.stem)
    with pytest.raises(ConfigError, match="must be 1-100 letters"):
        add_result(runs["half"], board, name="../escape")
    tampered = load(runs["half"])
    tampered["metrics"]["action"]["mean"] = 1.0
    atomic_write_json(runs["half"] / "results.json", tampered)
    with pytest.raises(ValidationError, match="metrics.action.mean"):
        add_result(runs["half"], board)
    assert sorted(p.name for p in (board / "results").iterdir()) == [path.name]


def test_render_groups_by_judge_version_and_marks_reported_rows(runs, tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    shutil.copy(REPO / "leaderboard" / "reported.json", board / "reported.json")
    added = [add_result(runs[k], board) for k in ("half", "good", "newjudge")]
    written = render_leaderboard(board)
    assert set(written) == {"markdown", "csv", "html"} and all(p.parent == board for p in written.values())

    md = written["markdown"].read_text()
    assert "## Dataset `synthetic`, backbone `mini`" in md and "## Dataset `v1`, backbone `sd21`" in md
    v1 = md.index("### Judge: colour, version 1")
    v2 = md.index("### Judge: colour, version 2")
    table_v1 = md[v1:v2]
    assert table_v1.index("| 1 | adi |") < table_v1.index("| 2 | sd |")  # sorted by total within the group
    assert "textual_inversion" not in table_v1 and "| 1 | textual_inversion |" in md[v2:]  # never ranked across versions
    assert "100.00 [100.0, 100.0]" in table_v1 and "measured" in table_v1
    paper = md[md.index("### Judge: paper (unspecified, likely human)"):]
    assert paper.index("ADI (`adi`) | 60.33 | 85.87 | 51.09") < paper.index("ReVersion (`reversion`)")
    assert paper.count("| reported |") == 8 and "Huang et al., CVPR 2024, Table 1 (SD 2.1)" in paper

    rows = list(csv.DictReader(written["csv"].open()))
    assert len(rows) == 3 + 8
    by_kind = {k: [r for r in rows if r["kind"] == k] for k in ("measured", "reported")}
    assert len(by_kind["measured"]) == 3 and len(by_kind["reported"]) == 8
    adi = next(r for r in by_kind["reported"] if r["method"] == "adi")
    assert (adi["action_pct"], adi["total_pct"], adi["backbone"], adi["judge_name"]) == \
        ("60.33", "51.09", "sd21", "paper (unspecified, likely human)")
    ti = next(r for r in by_kind["measured"] if r["method"] == "textual_inversion")
    assert ti["per_action.cheer.action_pct"] == "100.0" and ti["per_action.sit.action_pct"] == "0.0"
    assert ti["judge_version"] == "2" and ti["spec_hash"] and re.fullmatch(r"\d{4}-\d\d-\d\d", ti["run_date"])
    assert float(ti["lift"]) == pytest.approx(1 / 8) and ti["seeds"] == "1" and ti["run_name"] == "newjudge"

    page = written["html"].read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page and 'src="http' not in page
    assert page.count("<svg") == 6 and page.count('<table class="dataframe board">') == 3  # bars + heat maps
    assert page.count('<span class="reported" title="Huang et al., CVPR 2024, Table 1 (SD 2.1)">reported</span>') == 8
    assert "tr:has(.reported) td{color:#555;font-style:italic}" in page
    # grids are stored small and scaled up in the page by a whole factor, pixels kept sharp
    assert "image-rendering:pixelated" in page
    for path in added:
        assert f'href="results/{path.name}"' in page
        width = display_width(image_width(board / "grids" / f"{path.stem}.png"))
        assert f'<img class="grid" src="grids/{path.stem}.png" width="{width}"' in page

    before = {k: p.read_bytes() for k, p in written.items()}
    assert {k: p.read_bytes() for k, p in render_leaderboard(board).items()} == before  # deterministic


def test_render_extra_results_and_invalid_files(runs, tmp_path):
    board = tmp_path / "board"
    written = render_leaderboard(board, extra_results=[runs["good"]])  # no reported.json, nothing added
    assert "| 1 | adi |" in written["markdown"].read_text()
    tampered = load(runs["half"])
    tampered["records"] = tampered["records"][:-1]
    atomic_write_json(board / "results" / "bad.json", tampered)
    with pytest.raises(ValidationError, match=r"bad.json is not a valid results file(.|\n)*metrics.n is 368"):
        render_leaderboard(board)


def test_tables_come_from_one_frame_in_display_order(runs, tmp_path):
    from actionbench.leaderboard import board_frame, collect_rows

    board = tmp_path / "board"
    board.mkdir()
    shutil.copy(REPO / "leaderboard" / "reported.json", board / "reported.json")
    frame = board_frame(collect_rows(board, [runs["half"], runs["good"], runs["newjudge"]]))
    measured = frame[frame["kind"] == "measured"]
    assert list(measured["method"]) == ["adi", "sd", "textual_inversion"]  # total order inside tiny v1, then v2
    assert list(measured["rank"]) == [1, 2, 1]
    assert list(frame.loc[frame["kind"] == "reported", "rank"]) == list(range(1, 9))
    assert list(measured["total"]) == [1.0, 0.5, pytest.approx(1 / 8)]


def test_committed_results_files_stay_valid():
    """Results written before the schema moved into actionbench.results.schema still pass its checks."""
    files = sorted((REPO / "leaderboard" / "results").glob("*.json"))
    assert files
    for path in files:
        assert validate_results(path) == [], path.name


def test_results_builder_output_passes_the_checker():
    from actionbench.dataset import load_dataset
    from run_fixtures import recorded_spec

    dataset = load_dataset("synthetic")
    records = [image_record(u.id, u.action_id, u.subject_id, u.k, u.seed,
                            f"images/{u.action_id}/{u.subject_id}/{u.k}.png", True, u.k == 0, {}, image_sha256="0" * 64)
               for u in dataset.units()]
    spec = recorded_spec()
    provenance = {"actionbench_version": None, "git_commit": None, "git_dirty": None, "packages": {},
                  "device": "cpu", "python": "3.11", "platform": "linux", "started_at": "2026-01-02T03:04:05+00:00",
                  "finished_at": "2026-01-02T03:05:00+00:00", "wall_time_s": 1.0, "machine": {}}
    record = build_results("run", spec, {"name": "tiny", "version": "1", "human": False}, records, [], 368, provenance)
    assert check_results(record) == [] and record["complete"] is True and record["coverage"]["partial"] is False
    assert list(record)[:2] == ["schema_version", "run_name"] and record["metrics"]["total"]["mean"] == 0.5
    assert build_results("run", spec, record["judge"], records, [], 369, provenance)["complete"] is False
    assert any("records[0] (cheer/man/0).seed" in p for p in check_results(dict(record, records=[
        dict(records[0], seed="7"), *records[1:]])))


def test_quickstart_leaderboard_step_changes_no_tracked_file(tmp_path, monkeypatch):
    """`actionbench leaderboard runs/quickstart` (the README's quick start) used to rewrite leaderboard/*,
    so every later run recorded git_dirty: true. It now writes a personal board into the run folder."""
    from actionbench.cli import main

    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, text=True) \
        if shutil.which("git") else None
    if listed is None or listed.returncode != 0:
        pytest.skip("needs git and a git checkout of actionbench")
    checkout = tmp_path / "checkout"
    for rel in filter(None, listed.stdout.split("\0")):
        if (REPO / rel).is_file():
            (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, checkout / rel)
    git = ["git", "-C", str(checkout), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "checkout copy"], check=True)
    make_run(checkout / "runs", "quickstart", method="adi")
    monkeypatch.chdir(checkout)

    result = CliRunner().invoke(main, ["leaderboard", "runs/quickstart"])
    assert result.exit_code == 0, result.output
    status = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    assert status.stdout == ""
    personal = checkout / "runs" / "quickstart" / "leaderboard"
    md = (personal / "LEADERBOARD.md").read_text()
    assert "| 1 | adi |" in md  # the run itself
    assert "| controlnet |" in md and "ADI (`adi`) | 60.33" in md  # next to the project's and the paper's rows
    page = (personal / "index.html").read_text()
    links = re.findall(r'(?:src|href)="([^"#][^"]*)"', page)
    assert "../results.json" in links and "../../../leaderboard/results/mini-adi.json" in links
    assert all((personal / link).is_file() for link in links)

    chosen = tmp_path / "mine"  # --dir: a folder of the user's choosing
    result = CliRunner().invoke(main, ["leaderboard", "runs/quickstart", "--dir", str(chosen)])
    assert result.exit_code == 0, result.output
    assert (chosen / "index.html").is_file() and status.stdout == subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout


def test_reported_rows_match_the_paper_table():
    data = json.loads((REPO / "leaderboard" / "reported.json").read_text())
    rows = {r["method"]: r for r in data["rows"]}
    assert list(rows) == ["sd", "controlnet", "dreambooth", "textual_inversion", "reversion", "custom_diffusion",
                          "p_plus", "adi"]
    assert (rows["adi"]["action_pct"], rows["adi"]["subject_pct"], rows["adi"]["total_pct"]) == (60.33, 85.87, 51.09)
    assert (rows["controlnet"]["action_pct"], rows["controlnet"]["subject_pct"], rows["controlnet"]["total_pct"]) == \
        (41.30, 42.66, 19.29)
    for r in rows.values():
        assert r["reported"] is True and r["backbone"] == "sd21"
        assert r["source"] == "Huang et al., CVPR 2024, Table 1 (SD 2.1)"
        assert r["judge"] == "paper (unspecified, likely human)"
        assert r["total_pct"] <= min(r["action_pct"], r["subject_pct"])
        for m in ("action", "subject", "total"):  # every value is a multiple of 1/368, printed to 2 decimals
            count = r[f"{m}_pct"] * 368 / 100
            assert abs(count - round(count)) < 0.02, (r["method"], m)
