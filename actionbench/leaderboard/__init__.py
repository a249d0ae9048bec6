"""Leaderboard: validate results files, keep copies, draw image grids, render Markdown / CSV / HTML.

Layout of a leaderboard folder::

    leaderboard/reported.json          the paper's numbers (Huang et al., CVPR 2024, Table 1), marked reported
    leaderboard/results/<name>.json    byte-for-byte copies of results files (``add_result``)
    leaderboard/grids/<name>.png       image grid of each added run, drawn from its run folder at add time
    leaderboard/LEADERBOARD.md, leaderboard.csv, index.html      written by ``render_leaderboard``

Ranking rule: rows are grouped by dataset, backbone and judge (name, version and model);
they are sorted by total accuracy inside a group and never ranked across groups, so a new
judge version or dataset starts a new table (lm-evaluation-harness #2211: scores moved
when prompts changed). The paper's rows form their own judge group.

Public API: ``validate_results``, ``check_results``, ``make_grid``, ``add_result``,
``render_leaderboard``, ``ValidationError``.
"""
from __future__ import annotations

import csv
import html
import io
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from actionbench.errors import ActionBenchError, ConfigError, SchemaError
from actionbench.hashing import stable_hash
from actionbench.io import TMP_MARKER, atomic_write_bytes, atomic_write_text, read_json, save_image
from actionbench.metrics import compute_metrics
from actionbench.results import SCHEMA_VERSION

RESULTS_FILE = "results.json"  # the runner's name for a run folder's results
REPORTED_FILE = "reported.json"
METRICS = ("action", "subject", "total")
TOLERANCE = 1e-6  # far below 1/368: only float noise passes
_NONE = type(None)


class ValidationError(SchemaError):
    """A results (or reported) file failed validation; ``problems`` lists every finding."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source} is not a valid results file:\n- " + "\n- ".join(self.problems))


# --- validation ------------------------------------------------------------------------------

TOP_FIELDS = {"run_name": str, "spec": dict, "spec_hash": str, "judge": dict, "metrics": dict, "records": list,
              "provenance": dict}
SPEC_FIELDS = {"method": str, "method_version": (str, int), "method_config": dict, "config_hash": str,
               "backbone": dict, "dataset": str, "manifest_sha256": str, "protocol": dict, "preset": (str, _NONE)}
JUDGE_FIELDS = {"name": str, "version": (str, int), "human": bool}
RECORD_FIELDS = {"unit_id": str, "action_id": str, "subject_id": str, "k": int, "seed": int, "image": str,
                 "action_ok": bool, "subject_ok": bool, "detail": dict}
PROVENANCE_FIELDS = {"actionbench_version": (str, _NONE), "git_commit": (str, _NONE), "git_dirty": (bool, _NONE),
                     "packages": dict, "device": str, "python": str, "platform": str, "started_at": str,
                     "finished_at": str, "wall_time_s": (int, float)}


def _type_name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {str: "string", int: "integer", float: "number", bool: "true/false", dict: "object", list: "list",
             _NONE: "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _type_ok(value: Any, types) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in types:  # bool is an int to Python, not to JSON readers
        return False
    return isinstance(value, types)


def _check_fields(obj: Mapping, fields: Mapping[str, Any], where: str, problems: list[str]) -> None:
    for key, types in fields.items():
        if key not in obj:
            problems.append(f"{where}{key} is missing (expected {_type_name(types)}); "
                            "write results with actionbench's runner, which fills every field")
        elif not _type_ok(obj[key], types):
            problems.append(f"{where}{key} is {obj[key]!r} ({type(obj[key]).__name__}); expected {_type_name(types)}")


def _compare(expected: Any, stored: Any, where: str, out: list[str]) -> None:
    """Every leaf of ``expected`` must be in ``stored`` (numbers within TOLERANCE)."""
    if isinstance(expected, dict):
        if not isinstance(stored, dict):
            out.append(f"{where} is {stored!r}; expected an object")
            return
        for key, value in expected.items():
            if key not in stored:
                out.append(f"{where}.{key} is missing")
            else:
                _compare(value, stored[key], f"{where}.{key}", out)
        for key in stored:
            if key not in expected and where.endswith(("per_action", "per_subject")):
                out.append(f"{where}.{key} is stored but no record has {where.rsplit('_', 1)[-1]} '{key}'")
    elif isinstance(expected, list):
        if not isinstance(stored, list) or len(stored) != len(expected):
            out.append(f"{where} is {stored!r} but the records give {expected!r}")
            return
        for i, (e, s) in enumerate(zip(expected, stored)):
            _compare(e, s, f"{where}[{i}]", out)
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if not (isinstance(stored, (int, float)) and not isinstance(stored, bool)
                and math.isclose(stored, expected, rel_tol=0, abs_tol=TOLERANCE)):
            out.append(f"{where} is {stored!r} but the records give {expected!r}")
    elif expected != stored:
        out.append(f"{where} is {stored!r} but the records give {expected!r}")


def _load(path_or_dict: str | Path | Mapping) -> tuple[Any, str]:
    if isinstance(path_or_dict, Mapping):
        return path_or_dict, "results"
    path = Path(path_or_dict)
    return read_json(path, "results file"), str(path)


def validate_results(path_or_dict: str | Path | Mapping) -> list[str]:
    """Every problem found in a results file (empty list: valid).

    Checks the schema version, required keys and their types, that the metrics equal those
    recomputed from the records, that ``spec_hash`` is the stable hash of ``spec``, that
    ``metrics.n`` is the number of records, and that unit ids are unique.
    """
    try:
        data, _ = _load(path_or_dict)
    except ActionBenchError as exc:
        return [str(exc)]
    if not isinstance(data, Mapping):
        return [f"a results file holds one JSON object, found {type(data).__name__}"]
    found = data.get("schema_version")
    if found != SCHEMA_VERSION:
        return [f"schema_version is {found!r}, this ActionBench reads {SCHEMA_VERSION}; "
                + ("upgrade actionbench (pip install -U actionbench) to read newer results"
                   if isinstance(found, int) and found > SCHEMA_VERSION
                   else "rewrite the results with the current runner (`actionbench judge --out RUN`)")]
    problems: list[str] = []
    _check_fields(data, TOP_FIELDS, "", problems)
    spec = data.get("spec")
    if isinstance(spec, dict):
        _check_fields(spec, SPEC_FIELDS, "spec.", problems)
        backbone = spec.get("backbone")
        if isinstance(backbone, dict) and not isinstance(backbone.get("id"), str):
            problems.append(f"spec.backbone.id is {backbone.get('id')!r}; expected the backbone id string, e.g. 'sd21'")
        if isinstance(data.get("spec_hash"), str) and data["spec_hash"] != stable_hash(spec):
            problems.append(
                f"spec_hash is {data['spec_hash']!r} but stable_hash(spec) is {stable_hash(spec)!r}: the spec was "
                "edited after the run; restore the run's spec.json, or rerun to get a new results file"
            )
    if isinstance(data.get("judge"), dict):
        _check_fields(data["judge"], JUDGE_FIELDS, "judge.", problems)
    if isinstance(data.get("provenance"), dict):
        _check_fields(data["provenance"], PROVENANCE_FIELDS, "provenance.", problems)

    records = data.get("records")
    if not isinstance(records, list):
        return problems
    if not records:
        problems.append("records is empty: nothing was judged; run `actionbench judge --out RUN` first")
    record_problems: list[str] = []
    for i, r in enumerate(records):
        where = f"records[{i}]"
        if not isinstance(r, dict):
            record_problems.append(f"{where} is {type(r).__name__}; expected an object")
            continue
        if isinstance(r.get("unit_id"), str):
            where = f"records[{i}] ({r['unit_id']})"
        _check_fields(r, RECORD_FIELDS, f"{where}.", record_problems)
        image = r.get("image")
        if isinstance(image, str) and (Path(image).is_absolute() or ".." in Path(image).parts):
            record_problems.append(f"{where}.image is {image!r}; it must be relative to the run folder, "
                                   "e.g. images/cheer/man/0.png")
    if record_problems:
        problems.extend(record_problems[:10])
        if len(record_problems) > 10:
            problems.append(f"... and {len(record_problems) - 10} more problems in records")
    counts = Counter(r.get("unit_id") for r in records if isinstance(r, dict))
    for unit_id, count in counts.items():
        if count > 1:
            problems.append(f"unit_id {unit_id!r} appears {count} times in records; each image is recorded once "
                            "(merge shards by judging the shared run folder, not by concatenating records)")

    metrics = data.get("metrics")
    if isinstance(metrics, dict) and not record_problems:
        if metrics.get("n") != len(records):
            problems.append(f"metrics.n is {metrics.get('n')!r} but there are {len(records)} records")
        boot = metrics.get("bootstrap") if isinstance(metrics.get("bootstrap"), dict) else {}
        try:
            expected = compute_metrics(records, n_boot=int(boot.get("n_boot", 1000)), seed=int(boot.get("seed", 0)))
        except (ValueError, TypeError) as exc:
            problems.append(f"metrics cannot be recomputed from the records: {exc}")
        else:
            expected.pop("n")
            if "bootstrap" not in metrics:
                expected.pop("bootstrap")
            mismatches: list[str] = []
            _compare(expected, metrics, "metrics", mismatches)
            if mismatches:
                problems.extend(mismatches[:10])
                if len(mismatches) > 10:
                    problems.append(f"... and {len(mismatches) - 10} more metric mismatches")
                problems.append("the metrics do not match the records (edited by hand, or records changed): "
                                "recompute them with actionbench.metrics.compute_metrics(records)")
    return problems


def check_results(path_or_dict: str | Path | Mapping) -> dict:
    """Like ``validate_results`` but returns the results dict, or raises ``ValidationError``."""
    try:
        data, source = _load(path_or_dict)
    except ActionBenchError as exc:
        raise ValidationError(str(path_or_dict), [str(exc)]) from None
    problems = validate_results(data)
    if problems:
        raise ValidationError(source, problems)
    return dict(data)


# --- image grid ------------------------------------------------------------------------------


def resolve_results_path(run_dir_or_results_path: str | Path) -> Path:
    """A results JSON path from a run folder (its ``results.json``) or the path itself."""
    path = Path(run_dir_or_results_path)
    if path.is_dir():
        if (path / RESULTS_FILE).is_file():
            return path / RESULTS_FILE
        found = sorted(p.name for p in path.glob("*.json"))
        raise ActionBenchError(
            f"no {RESULTS_FILE} in {path} (JSON files there: {', '.join(found) or 'none'}); finish the run with "
            f"`actionbench judge --out {path}`, or pass the results file itself"
        )
    if not path.is_file():
        raise ActionBenchError(f"results file not found: {path}")
    return path


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def _fit(draw, text: str, font, width: float) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".."


def make_grid(run_dir_or_results_path: str | Path, max_actions: int = 8, max_subjects: int = 8, cell: int = 128):
    """A labelled grid of a run's images: one row per action, one column per subject (image k=0).

    Each image gets a green border when it was judged right on both counts (total), red when
    not, and grey when it has no judgment. Missing images are drawn as grey "missing" cells.

    Args:
        run_dir_or_results_path: a run folder (with ``results.json``) or a results JSON; image
            paths in the records are relative to the folder holding the JSON.
        max_actions, max_subjects: the first ones in record order are shown.
        cell: side of one cell in pixels.

    Returns:
        A ``PIL.Image`` (RGB).
    """
    from PIL import Image, ImageDraw, ImageOps

    from actionbench.io import load_image

    path = resolve_results_path(run_dir_or_results_path)
    record = read_json(path, "results file")
    run_dir = path.parent
    records = [r for r in record.get("records", []) if isinstance(r, dict)]
    actions = list(dict.fromkeys(r.get("action_id") for r in records))[:max_actions]
    subjects = list(dict.fromkeys(r.get("subject_id") for r in records))[:max_subjects]
    first: dict[tuple, dict] = {}
    for r in records:
        key = (r.get("action_id"), r.get("subject_id"))
        if key not in first or int(r.get("k", 0)) < int(first[key].get("k", 0)):
            first[key] = r

    font = _font()
    label_w, title_h, head_h, border = max(64, cell * 3 // 4), 18, 16, max(2, cell // 16)
    width = label_w + max(1, len(subjects)) * cell
    height = title_h + head_h + max(1, len(actions)) * cell
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    spec, judge = record.get("spec") or {}, record.get("judge") or {}
    title = f"{spec.get('method', '?')} | {record.get('run_name', path.stem)}"
    if judge:
        title += f" | judge {judge.get('name')} v{judge.get('version')} | green: action and subject right"
    draw.text((4, 3), _fit(draw, title, font, width - 8), fill="black", font=font)
    for j, subject in enumerate(subjects):
        x = label_w + j * cell
        draw.text((x + 3, title_h + 2), _fit(draw, str(subject), font, cell - 6), fill="black", font=font)
    for i, action in enumerate(actions):
        y = title_h + head_h + i * cell
        draw.text((4, y + cell // 2 - 6), _fit(draw, str(action), font, label_w - 8), fill="black", font=font)
        for j, subject in enumerate(subjects):
            x = label_w + j * cell
            r = first.get((action, subject))
            judged = r is not None and isinstance(r.get("action_ok"), bool) and isinstance(r.get("subject_ok"), bool)
            color = ((46, 160, 67) if r["action_ok"] and r["subject_ok"] else (207, 34, 46)) if judged \
                else (190, 190, 190)
            draw.rectangle([x + 1, y + 1, x + cell - 2, y + cell - 2], fill=color)
            inner = cell - 2 * (border + 1)
            image = None
            if r is not None and isinstance(r.get("image"), str):
                try:
                    image = load_image(run_dir / r["image"])
                except ActionBenchError:
                    image = None
            if image is None:
                draw.rectangle([x + 1 + border, y + 1 + border, x + cell - 2 - border, y + cell - 2 - border],
                               fill=(225, 225, 225))
                draw.text((x + border + 4, y + cell // 2 - 6), "missing", fill=(90, 90, 90), font=font)
                continue
            image = ImageOps.contain(image, (inner, inner))  # scales small images up, large ones down
            grid.paste(image, (x + 1 + border + (inner - image.width) // 2, y + 1 + border + (inner - image.height) // 2))
    return grid


# --- adding a run ----------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _slug(text: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.") or "x"


def default_name(results: Mapping) -> str:
    """``<method>-<spec hash>-<judge>-v<version>``: one leaderboard row per spec and judge version."""
    judge = results.get("judge") or {}
    return _slug(f"{results['spec']['method']}-{results['spec_hash']}-{judge.get('name')}-v{judge.get('version')}")[:100]


def add_result(results_path: str | Path, leaderboard_dir: str | Path = "leaderboard", name: str | None = None) -> Path:
    """Validate a results file and add it to a leaderboard folder; returns the copy's path.

    The JSON is copied byte for byte to ``<leaderboard_dir>/results/<name>.json`` (image paths in
    it stay relative to the original run folder) and the run's image grid, drawn now from the
    run folder, goes to ``<leaderboard_dir>/grids/<name>.png``. Adding the same run (same spec
    and judge) again replaces it.

    Raises:
        ValidationError: the results file is invalid (every problem is listed).
        ConfigError: ``name`` is not a safe file name, or already names a different run.
    """
    source = resolve_results_path(results_path)
    data = check_results(source)
    name = default_name(data) if name is None else name
    if not _SAFE_NAME.match(name):
        raise ConfigError(f"leaderboard entry name {name!r} must be 1-100 letters, digits, '.', '_' or '-' "
                          "(starting with a letter or digit)")
    board = Path(leaderboard_dir)
    target = board / "results" / f"{name}.json"
    if target.exists():
        try:
            existing = read_json(target, "leaderboard results file")
        except ActionBenchError:
            existing = None  # a damaged copy is simply replaced
        if isinstance(existing, dict) and (existing.get("spec_hash"), _judge_id(existing)) != (
                data.get("spec_hash"), _judge_id(data)):
            raise ConfigError(
                f"{target} already holds a different run (spec {existing.get('spec_hash')}, judge "
                f"{_judge_id(existing)}); choose another name=..., or delete that file to replace it"
            )
    grid = make_grid(source, cell=96)  # from the run folder, now: the copy's image paths point there
    atomic_write_bytes(target, source.read_bytes())
    save_image(grid, board / "grids" / f"{name}.png")
    return target


def _judge_id(results: Mapping) -> tuple:
    judge = results.get("judge") or {}
    return judge.get("name"), str(judge.get("version")), judge.get("model"), judge.get("pretrained")


# --- entries ---------------------------------------------------------------------------------


@dataclass
class Entry:
    """One leaderboard row: a measured run or a reported (paper) number. Accuracies are fractions."""

    kind: str  # "measured" or "reported"
    name: str
    method: str
    label: str
    dataset: str
    backbone: str
    judge_name: str
    judge_version: str | None = None
    judge_model: str | None = None
    judge_pretrained: str | None = None
    judge_human: bool | None = None
    scores: dict = field(default_factory=dict)  # metric -> (mean, lo, hi)
    n: int | None = None
    complete: bool | None = None
    preset: str | None = None
    run_name: str | None = None
    run_date: str | None = None
    spec_hash: str | None = None
    config_hash: str | None = None
    method_version: str | None = None
    manifest_sha256: str | None = None
    source: str | None = None
    results_file: str | None = None
    grid: str | None = None  # relative to the leaderboard folder
    per_action: dict = field(default_factory=dict)

    @property
    def judge_label(self) -> str:
        label = self.judge_name if self.judge_version is None else f"{self.judge_name} v{self.judge_version}"
        if self.judge_model:
            label += f" ({self.judge_model}" + (f", {self.judge_pretrained})" if self.judge_pretrained else ")")
        return label

    @property
    def group(self) -> tuple:
        return (self.dataset, self.backbone), (self.kind != "measured", self.judge_label)

    def total(self) -> float:
        value = self.scores.get("total", (None,))[0]
        return -1.0 if value is None else value


def _measured_entry(data: Mapping, name: str, results_file: str, grid: str | None) -> Entry:
    spec, judge, metrics, prov = data["spec"], data["judge"], data["metrics"], data.get("provenance", {})
    date = str(prov.get("finished_at") or prov.get("started_at") or "")[:10] or None
    return Entry(
        kind="measured", name=name, method=spec["method"], label=spec["method"], dataset=spec["dataset"],
        backbone=spec["backbone"]["id"], judge_name=str(judge["name"]), judge_version=str(judge["version"]),
        judge_model=judge.get("model"), judge_pretrained=judge.get("pretrained"), judge_human=judge.get("human"),
        scores={m: (metrics[m]["mean"], *(metrics[m]["ci95"] or (None, None))) for m in METRICS},
        n=metrics["n"], complete=data.get("complete", True), preset=spec.get("preset"),
        run_name=data.get("run_name"), run_date=date, spec_hash=data["spec_hash"],
        config_hash=spec.get("config_hash"), method_version=str(spec.get("method_version")),
        manifest_sha256=spec.get("manifest_sha256"), source="measured", results_file=results_file, grid=grid,
        per_action={a: dict(v) for a, v in metrics.get("per_action", {}).items()},
    )


def load_reported(path: str | Path) -> list[Entry]:
    """The paper's rows from ``reported.json`` (percentages there; fractions in the entries)."""
    path = Path(path)
    data = read_json(path, "reported results")
    problems = []
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ValidationError(str(path), ["rows is missing; expected a list of reported rows"])
    entries = []
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("method"), str):
            problems.append(f"{where}.method is missing; expected a method registry id such as 'adi'")
            continue
        values = {}
        for m in METRICS:
            value = row.get(f"{m}_pct")
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100):
                problems.append(f"{where}.{m}_pct is {value!r}; expected a percentage between 0 and 100")
            else:
                values[m] = (value / 100.0, None, None)
        if len(values) < len(METRICS):
            continue
        entries.append(Entry(
            kind="reported", name=f"reported-{_slug(row['method'])}", method=row["method"],
            label=row.get("label", row["method"]), dataset=str(row.get("dataset", "v1")),
            backbone=str(row.get("backbone", "sd21")), judge_name=str(row.get("judge", "paper")),
            scores=values, n=row.get("n"), complete=True, run_date=row.get("date"),
            source=row.get("source", data.get("source")), results_file=path.name,
        ))
    if problems:
        raise ValidationError(str(path), problems)
    return entries


def _collect(board: Path, extra_results: Iterable[str | Path]) -> list[Entry]:
    entries: list[Entry] = []
    files = sorted(p for p in (board / "results").glob("*.json") if not p.name.startswith(TMP_MARKER)) \
        if (board / "results").is_dir() else []
    for path in files:
        grid = board / "grids" / f"{path.stem}.png"
        entries.append(_measured_entry(check_results(path), path.stem, f"results/{path.name}",
                                       f"grids/{path.stem}.png" if grid.is_file() else None))
    for item in extra_results:
        path = resolve_results_path(item)
        name = path.parent.name if path.name == RESULTS_FILE else path.stem
        run_grid = path.parent / "grid.png"
        grid = os.path.relpath(run_grid, board) if run_grid.is_file() else None
        entries.append(_measured_entry(check_results(path), _slug(name), os.path.relpath(path, board), grid))
    if (board / REPORTED_FILE).is_file():
        entries.extend(load_reported(board / REPORTED_FILE))
    # unique names (anchors in the HTML)
    seen: Counter = Counter()
    for e in entries:
        seen[e.name] += 1
        if seen[e.name] > 1:
            e.name = f"{e.name}-{seen[e.name]}"
    return entries


def _grouped(entries: Sequence[Entry]) -> list[tuple[tuple, list[tuple[str, list[Entry]]]]]:
    """[((dataset, backbone), [(judge_label, rows sorted by total)])], measured judges before reported."""
    sections: dict[tuple, dict[tuple, list[Entry]]] = {}
    for e in entries:
        outer, inner = e.group
        sections.setdefault(outer, {}).setdefault(inner, []).append(e)
    out = []
    for outer in sorted(sections):
        tables = []
        for inner in sorted(sections[outer]):
            rows = sorted(sections[outer][inner], key=lambda e: (-e.total(), e.method, e.name))
            tables.append((inner[1], rows))
        out.append((outer, tables))
    return out


# --- formatting ------------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _score_text(entry: Entry, metric: str) -> str:
    mean, lo, hi = entry.scores.get(metric, (None, None, None))
    text = _pct(mean)
    if lo is not None and hi is not None:
        text += f" [{_pct(lo, 1)}, {_pct(hi, 1)}]"
    return text


def _marker(entry: Entry) -> str:
    if entry.kind == "reported":
        return "reported"
    return "measured" if entry.complete is not False else "measured (incomplete)"


COLUMNS = ("#", "method", "action %", "subject %", "total %", "n", "preset", "run date", "spec hash", "")


def _cells(rank: int, entry: Entry) -> list[str]:
    return [str(rank), entry.label if entry.kind == "measured" else f"{entry.label} (`{entry.method}`)",
            _score_text(entry, "action"), _score_text(entry, "subject"), _score_text(entry, "total"),
            "-" if entry.n is None else str(entry.n), entry.preset or "-", entry.run_date or "-",
            entry.spec_hash or "-", _marker(entry)]


INTRO = (
    "Per generated image a judge answers two yes/no questions: is the target action shown, is the target "
    "subject shown. *Action* and *subject* are the percentages of yes; *total* counts an image only when both "
    "are yes on that same image. Measured rows show a 95% bootstrap interval in brackets. Rows are ranked by "
    "total only within one dataset, backbone and judge (name, version and model): never across them."
)


def render_markdown(entries: Sequence[Entry]) -> str:
    lines = ["# ActionBench leaderboard", "", INTRO, ""]
    sources = sorted({e.source for e in entries if e.kind == "reported" and e.source})
    for (dataset, backbone), tables in _grouped(entries):
        lines += [f"## Dataset `{dataset}`, backbone `{backbone}`", ""]
        for judge_label, rows in tables:
            lines += [f"### Judge: {judge_label}", "", "| " + " | ".join(c or "source" for c in COLUMNS) + " |",
                      "|" + "|".join("---" if c in ("method", "", "preset", "run date", "spec hash") else "---:"
                                     for c in COLUMNS) + "|"]
            for rank, entry in enumerate(rows, 1):
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(rank, entry)) + " |")
            lines.append("")
    if sources:
        lines += ["Reported rows: " + "; ".join(sources) + ". Numbers as printed; n = 368 is inferred "
                  "(every value is a multiple of 1/368); the paper's 23 subjects are not public.", ""]
    return "\n".join(lines)


CSV_FIELDS = ("kind", "name", "method", "label", "method_version", "dataset", "backbone", "judge_name",
              "judge_version", "judge_model", "judge_pretrained", "judge_human",
              "action_pct", "action_ci_lo_pct", "action_ci_hi_pct", "subject_pct", "subject_ci_lo_pct",
              "subject_ci_hi_pct", "total_pct", "total_ci_lo_pct", "total_ci_hi_pct", "n", "complete", "preset",
              "run_name", "run_date", "spec_hash", "config_hash", "manifest_sha256", "source", "results_file", "grid")


def render_csv(entries: Sequence[Entry]) -> str:
    action_ids = list(dict.fromkeys(a for e in entries for a in e.per_action))
    extra = [f"per_action.{a}.{m}_pct" for a in action_ids for m in METRICS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_FIELDS) + extra, lineterminator="\n")
    writer.writeheader()
    for (_, tables) in _grouped(entries):
        for _, rows in tables:
            for e in rows:
                row = {k: getattr(e, k) for k in CSV_FIELDS if hasattr(e, k)}
                for m in METRICS:
                    mean, lo, hi = e.scores.get(m, (None, None, None))
                    for suffix, value in (("pct", mean), ("ci_lo_pct", lo), ("ci_hi_pct", hi)):
                        row[f"{m}_{suffix}"] = None if value is None else round(100 * value, 4)
                for a, values in e.per_action.items():
                    for m in METRICS:
                        row[f"per_action.{a}.{m}_pct"] = round(100 * values[m], 4)
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def _bar_chart(entry: Entry) -> str:
    """Per-action action / subject / total accuracy as grouped bars (inline SVG, no scripts)."""
    actions = list(entry.per_action)
    colors = {"action": "#1f77b4", "subject": "#ff7f0e", "total": "#2ca02c"}
    group_w, bar_w, left, top, plot_h = 66, 16, 34, 22, 140
    width, height = left + max(1, len(actions)) * group_w + 10, top + plot_h + 34
    esc = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="per-action accuracy of {esc(entry.name)}" font-family="sans-serif" font-size="10">']
    for tick in (0, 25, 50, 75, 100):
        y = top + plot_h - plot_h * tick / 100
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 6}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#555">{tick}</text>')
    for k, (metric, color) in enumerate(colors.items()):
        parts.append(f'<rect x="{left + k * 70}" y="4" width="10" height="10" fill="{color}"/>'
                     f'<text x="{left + k * 70 + 14}" y="13">{metric}</text>')
    for i, action in enumerate(actions):
        x0 = left + i * group_w + 8
        for k, metric in enumerate(colors):
            value = float(entry.per_action[action].get(metric, 0.0))
            h = plot_h * value
            parts.append(f'<rect x="{x0 + k * bar_w}" y="{top + plot_h - h:.1f}" width="{bar_w - 2}" '
                         f'height="{h:.1f}" fill="{colors[metric]}"><title>{esc(action)} {metric}: '
                         f'{100 * value:.1f}%</title></rect>')
        parts.append(f'<text x="{x0 + 1.5 * bar_w - 1}" y="{top + plot_h + 14}" text-anchor="middle">'
                     f'{esc(action[:11])}</text>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f3f3f3} td.l,th.l{text-align:left}
tr.reported td{color:#555;font-style:italic}
.run{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start;margin-bottom:2rem}
.run img{max-width:100%;border:1px solid #ccc}
.meta{font-size:.85rem;color:#444} code{font-size:.85em}
"""


def render_html(entries: Sequence[Entry]) -> str:
    esc = html.escape
    out = ['<!doctype html>', '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f'<title>ActionBench leaderboard</title><style>{CSS}</style></head><body>',
           '<h1>ActionBench leaderboard</h1>', f'<p>{esc(INTRO).replace("*", "")}</p>']
    for (dataset, backbone), tables in _grouped(entries):
        out.append(f'<h2>Dataset <code>{esc(dataset)}</code>, backbone <code>{esc(backbone)}</code></h2>')
        for judge_label, rows in tables:
            out.append(f'<h3>Judge: {esc(judge_label)}</h3><table><thead><tr>')
            out.append("".join(f'<th class="{"l" if c in ("method", "") else ""}">{esc(c or "source")}</th>'
                               for c in COLUMNS))
            out.append('</tr></thead><tbody>')
            for rank, e in enumerate(rows, 1):
                cells = _cells(rank, e)
                method = esc(e.label) if e.kind == "measured" else f'{esc(e.label)} (<code>{esc(e.method)}</code>)'
                if e.kind == "measured":
                    method = f'<a href="#run-{esc(e.name)}">{method}</a>'
                tds = [f'<td>{rank}</td>', f'<td class="l">{method}</td>']
                tds += [f'<td>{esc(c)}</td>' for c in cells[2:-1]]
                title = f' title="{esc(e.source)}"' if e.kind == "reported" and e.source else ""
                tds.append(f'<td class="l"{title}>{esc(cells[-1])}</td>')
                out.append(f'<tr class="{e.kind}">' + "".join(tds) + '</tr>')
            out.append('</tbody></table>')
    sources = sorted({e.source for e in entries if e.kind == "reported" and e.source})
    if sources:
        out.append(f'<p class="meta">Reported rows: {esc("; ".join(sources))}. Numbers as printed; n = 368 is '
                   'inferred; the paper\'s 23 subjects are not public.</p>')
    measured = [e for e in entries if e.kind == "measured"]
    if measured:
        out.append('<h2>Runs</h2>')
    for e in measured:
        out.append(f'<section id="run-{esc(e.name)}"><h3>{esc(e.name)}</h3>')
        meta = (f'method <code>{esc(e.method)}</code> v{esc(str(e.method_version))}, dataset <code>{esc(e.dataset)}'
                f'</code>, backbone <code>{esc(e.backbone)}</code>, judge {esc(e.judge_label)}, preset '
                f'{esc(e.preset or "none")}, spec <code>{esc(e.spec_hash or "-")}</code>, run {esc(e.run_date or "-")}, '
                f'n = {e.n}{"" if e.complete is not False else " (incomplete)"}; '
                f'<a href="{esc(e.results_file or "")}">results JSON</a>')
        out.append(f'<p class="meta">{meta}</p><div class="run">')
        if e.grid:
            out.append(f'<img src="{esc(e.grid)}" alt="image grid of {esc(e.name)}: rows actions, columns subjects; '
                       'green border: action and subject right, red: not" loading="lazy">')
        if e.per_action:
            out.append(_bar_chart(e))
        out.append('</div></section>')
    out.append('</body></html>')
    return "\n".join(out) + "\n"


def render_leaderboard(leaderboard_dir: str | Path = "leaderboard",
                       extra_results: Iterable[str | Path] = ()) -> dict[str, Path]:
    """Render every results file in ``<leaderboard_dir>/results`` plus ``reported.json`` (and extras).

    Writes ``LEADERBOARD.md``, ``leaderboard.csv`` and ``index.html`` (static, no scripts, no
    network) atomically into ``leaderboard_dir``.

    Args:
        leaderboard_dir: the leaderboard folder.
        extra_results: results files or run folders to show without adding them.

    Returns:
        ``{"markdown": path, "csv": path, "html": path}``.

    Raises:
        ValidationError: a results file (or reported.json) is invalid; the message names it.
    """
    board = Path(leaderboard_dir)
    entries = _collect(board, extra_results)
    return {
        "markdown": atomic_write_text(board / "LEADERBOARD.md", render_markdown(entries)),
        "csv": atomic_write_text(board / "leaderboard.csv", render_csv(entries)),
        "html": atomic_write_text(board / "index.html", render_html(entries)),
    }
