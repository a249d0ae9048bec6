"""Your own subjects and prompts (``--subjects FILE``, ``--prompts FILE``): read, checked, and applied to a dataset.

Both files are CSV with a header row (values with a comma go in double quotes):

* subjects: ``id,category,name``. ``id`` names the subject's folder and unit ids (letters, digits,
  ``_`` and ``-``); ``category`` groups results (``human``, ``personality`` and ``animal`` are the
  benchmark's, and the people-vs-animals split reads them; any lowercase word is allowed);
  ``name`` is the words written into the prompt and read by the judge ("a firefighter").
* prompts: ``id,template``. A template holds ``{subject}`` and ``{action}`` once each, e.g.
  ``"{subject} {action} on a beach"``; ``{action}`` becomes what the method learned (its token or
  phrase). Every subject is drawn in every prompt: the subject ``man`` in the prompt ``beach`` is
  the subject ``man.beach`` of the run's units.

Without ``--subjects`` the dataset's own subjects are drawn; without ``--prompts`` the protocol's
``"{subject} {action}"``. The run's spec records both files' rows and SHA-256, so a run folder can be
judged and reproduced later from its ``spec.json`` alone. Such results are not the benchmark's
protocol: the leaderboard never ranks them with it (``leaderboard.validate.entry_caveats``).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .dataset import Dataset, Subject
from .errors import ConfigError

SUBJECT_COLUMNS = ("id", "category", "name")
PROMPT_COLUMNS = ("id", "template")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
CATEGORY_PATTERN = re.compile(r"^[a-z][a-z_]{0,31}$")
MAX_TEXT = 300
JOIN = "."  # subject "man" in prompt "beach" -> "man.beach"; ids never hold a dot, so the split is unambiguous


@dataclass(frozen=True)
class CustomFile:
    """One checked file: its name, the SHA-256 of its bytes, and its rows (dicts of its columns)."""

    kind: str  # "subjects" or "prompts"
    file: str
    sha256: str
    rows: tuple[tuple[tuple[str, str], ...], ...]

    def record(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "rows": [dict(r) for r in self.rows]}


@dataclass(frozen=True)
class Custom:
    """The subjects and prompts a run uses instead of its dataset's (either may be None)."""

    subjects: CustomFile | None = None
    prompts: CustomFile | None = None

    def record(self) -> dict:
        """What ``spec.json`` keeps under ``custom``: each file's name, SHA-256 and rows."""
        return {f.kind: f.record() for f in (self.subjects, self.prompts) if f is not None}

    def identity(self) -> dict:
        """What tells two custom runs apart (for the default run folder's name): the files' hashes."""
        return {f.kind: f.sha256 for f in (self.subjects, self.prompts) if f is not None}

    @classmethod
    def from_record(cls, record: Mapping | None) -> "Custom | None":
        """The ``custom`` block of a recorded spec back as a ``Custom`` (None when the run used none)."""
        if not record:
            return None
        files = {}
        try:
            for kind in ("subjects", "prompts"):
                part = record.get(kind)
                if part is not None:
                    files[kind] = CustomFile(kind, str(part["file"]), str(part["sha256"]),
                                             tuple(tuple(sorted(row.items())) for row in part["rows"]))
        except (AttributeError, KeyError, TypeError) as exc:
            raise ConfigError(f"the spec's custom block is malformed ({type(exc).__name__}: {exc}); it is written by "
                              "`actionbench eval --subjects/--prompts` and must not be edited") from None
        return cls(**files)

    def apply(self, dataset: Dataset) -> Dataset:
        """``dataset`` with these subjects (and every subject in every prompt) instead of its own."""
        subjects = dataset.subjects if self.subjects is None else tuple(
            Subject(row["id"], row["name"], row["category"]) for row in map(dict, self.subjects.rows))
        if self.prompts is not None:
            subjects = tuple(dataclasses.replace(s, id=f"{s.id}{JOIN}{p['id']}", template=p["template"])
                             for s in subjects for p in map(dict, self.prompts.rows))
        return dataclasses.replace(dataset, subjects=subjects, extra={**dataset.extra, "custom": self.record()})


def apply_custom(dataset: Dataset, record: Mapping | None) -> Dataset:
    """``dataset`` as a run with this recorded ``custom`` block saw it (unchanged without one)."""
    custom = Custom.from_record(record)
    return dataset if custom is None else custom.apply(dataset)


def read_custom(subjects: str | Path | None = None, prompts: str | Path | None = None) -> Custom | None:
    """Read and check ``--subjects`` and ``--prompts`` files (None when neither is given).

    Raises:
        ConfigError: a file missing or empty, a column missing or unknown, an empty value, an id that
            cannot name a folder, a duplicate id or subject name, a template without ``{subject}`` and
            ``{action}`` once each; the message names the file, the line and the fix.
    """
    if subjects is None and prompts is None:
        return None
    return Custom(subjects=_read(Path(subjects), "subjects", SUBJECT_COLUMNS) if subjects is not None else None,
                  prompts=_read(Path(prompts), "prompts", PROMPT_COLUMNS) if prompts is not None else None)


def _read(path: Path, kind: str, columns: tuple[str, ...]) -> CustomFile:
    import hashlib

    example = {"subjects": "the header id,category,name and rows like firefighter,human,a firefighter",
               "prompts": 'the header id,template and rows like beach,"{subject} {action} on a beach"'}[kind]
    if not path.is_file():
        raise ConfigError(f"--{kind} file {path} not found; give a CSV file with {example}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"--{kind} file {path} is not UTF-8 text; save it as UTF-8 CSV") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise ConfigError(f"--{kind} file {path} is empty; it needs {example}")
    if sorted(header) != sorted(columns):
        raise ConfigError(f"--{kind} file {path}: the header is {','.join(header)}; it must be exactly "
                          f"{','.join(columns)} ({example})")
    rows, first_line = [], {}
    check_row = _check_subject if kind == "subjects" else _check_prompt
    for raw in reader:
        where = f"--{kind} file {path} line {reader.line_num}"
        if None in raw or any(v is None for v in raw.values()):
            raise ConfigError(f"{where}: expected {len(columns)} values ({','.join(columns)}); quote a value that "
                              'holds a comma ("...")')
        row = {k.strip(): " ".join(v.split()) for k, v in raw.items()}
        check_row(row, where)
        for key, value in _unique_keys(kind, row).items():
            if value in first_line.setdefault(key, {}):
                raise ConfigError(f"{where}: {key} {row[key]!r} repeats line {first_line[key][value]}; "
                                  + ("ids name folders (case does not tell them apart on every file system)"
                                     if key == "id" else f"the judge tells {kind} apart by their {key}")
                                  + "; give each its own")
            first_line[key][value] = reader.line_num
        rows.append(tuple(sorted(row.items())))
    if not rows:
        raise ConfigError(f"--{kind} file {path} has a header but no rows; add {example}")
    return CustomFile(kind, path.name, hashlib.sha256(data).hexdigest(), tuple(rows))


def _unique_keys(kind: str, row: Mapping[str, str]) -> dict[str, str]:
    """Values that must not repeat within a file, compared without case."""
    return {"id": row["id"].lower(), ("name" if kind == "subjects" else "template"):
            row["name" if kind == "subjects" else "template"].lower()}


RULES = {
    "id": (ID_PATTERN, "1-64 letters, digits, '_' or '-' (starting with a letter or digit): it names folders and unit ids"),
    "category": (CATEGORY_PATTERN, "a lowercase word (the benchmark's are human, personality and animal)"),
}


def _check_text(row: Mapping[str, str], columns: tuple[str, ...], where: str) -> None:
    """Every column non-empty, printable and not too long, and ids and categories of their form."""
    for key in columns:
        value = row[key]
        if not value:
            raise ConfigError(f"{where}: {key} is empty")
        if len(value) > MAX_TEXT or not value.isprintable():
            raise ConfigError(f"{where}: {key} must be at most {MAX_TEXT} printable characters, got {value[:60]!r}")
        pattern, rule = RULES.get(key, (None, ""))
        if pattern is not None and not pattern.match(value):
            raise ConfigError(f"{where}: {key} {value!r} must be {rule}")


def _check_subject(row: dict[str, str], where: str) -> None:
    _check_text(row, SUBJECT_COLUMNS, where)


def _check_prompt(row: dict[str, str], where: str) -> None:
    _check_text(row, PROMPT_COLUMNS, where)
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(row["template"]) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"{where}: template {row['template']!r} is not a valid template ({exc}); write "
                          "{subject} and {action} where they go, and no other braces") from None
    wanted = {"subject", "action"}
    if sorted(fields) != sorted(wanted) or any(fields.count(f) != 1 for f in wanted):
        raise ConfigError(f"{where}: template {row['template']!r} must hold {{subject}} and {{action}} once each and "
                          f"no other field (found: {', '.join('{' + f + '}' for f in fields) or 'none'}), e.g. "
                          '"{subject} {action} on a beach"')


def describe(record: Mapping[str, Any] | None) -> str:
    """``custom subjects (subjects.csv, sha256 1a2b3c4d5e6f)``: how a results file's custom block reads."""
    if not record:
        return ""
    return "; ".join(f"custom {kind} ({part.get('file')}, sha256 {str(part.get('sha256'))[:12]})"
                     for kind, part in record.items() if isinstance(part, Mapping))


__all__ = ["Custom", "CustomFile", "apply_custom", "describe", "read_custom"]
