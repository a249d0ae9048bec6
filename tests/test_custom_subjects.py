"""Your own subjects and prompts: files checked before any compute, every subject drawn in every prompt,
judged by their words, recorded with the files' hashes, and never ranked with the standard protocol."""
from __future__ import annotations

import hashlib
import json

import pytest
from test_human import make_toy_dataset

from actionbench.errors import ConfigError

SUBJECTS = "id,category,name\nfirefighter,human,a firefighter\nfox,animal,a red fox\n"
PROMPTS = 'id,template\nbeach,"{subject} {action} on a beach, at noon"\nsnow,{subject} {action} in the snow\n'


def _files(tmp_path, subjects=SUBJECTS, prompts=PROMPTS):
    (tmp_path / "subjects.csv").write_text(subjects)
    (tmp_path / "prompts.csv").write_text(prompts)
    return tmp_path / "subjects.csv", tmp_path / "prompts.csv"


@pytest.mark.parametrize("kind,text,message", [
    ("subjects", None, r"subjects file .*subjects\.csv not found; give a CSV file with the header id,category,name"),
    ("subjects", "", r"subjects\.csv is empty"),
    ("subjects", "id,category,name\n", r"has a header but no rows"),
    ("subjects", "id,kind,name\nman,human,a man\n", r"the header is id,kind,name; it must be exactly id,category,name"),
    ("subjects", "id,category,name\nman,human,a man\nMan,human,a tall man\n",
     r"line 3: id 'Man' repeats line 2; ids name folders"),
    ("subjects", "id,category,name\nman,human,a man\nguy,human,A  man\n",
     r"line 3: name 'A man' repeats line 2; the judge tells subjects apart by their name"),
    ("subjects", "id,category,name\nmy man,human,a man\n", r"line 2: id 'my man' must be 1-64 letters"),
    ("subjects", "id,category,name\nman.beach,human,a man\n", r"line 2: id 'man.beach' must be"),
    ("subjects", "id,category,name\nman,Human,a man\n", r"line 2: category 'Human' must be a lowercase word"),
    ("subjects", "id,category,name\nman,human,\n", r"line 2: name is empty"),
    ("subjects", "id,category,name\nman,human,a man, tall\n", r"line 2: expected 3 values .*quote a value"),
    ("prompts", "id,template\nbeach,{subject} on a beach\n",
     r"line 2: template '\{subject\} on a beach' must hold \{subject\} and \{action\} once each .*found: \{subject\}"),
    ("prompts", "id,template\nbeach,{subject} {action} {place}\n", r"no other field"),
    ("prompts", "id,template\nbeach,{subject} {action} {action}\n", r"once each"),
    ("prompts", "id,template\nbeach,{subject} {action} {\n", r"is not a valid template"),
    ("prompts", "id,template\na,{subject} {action}\nb,{subject} {action}\n", r"line 3: template .* repeats line 2"),
])
def test_bad_files_are_refused_with_the_file_line_and_fix(tmp_path, kind, text, message):
    from actionbench.custom import read_custom

    path = tmp_path / f"{kind}.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_custom(**{kind: path})


def test_every_subject_is_drawn_in_every_prompt(tmp_path):
    from actionbench.custom import Custom, read_custom
    from actionbench.dataset import Subject

    custom = read_custom(*_files(tmp_path))
    dataset = custom.apply(make_toy_dataset(tmp_path / "data"))
    assert [s.id for s in dataset.subjects] == ["firefighter.beach", "firefighter.snow", "fox.beach", "fox.snow"]
    fox = dataset.subject("fox.beach")
    assert (fox.name, fox.category) == ("a red fox", "animal")
    assert fox.prompt("<cheer>") == "a red fox <cheer> on a beach, at noon"
    assert Subject("man", "a man", "human").prompt("<cheer>") == "a man <cheer>"  # the protocol's prompt
    assert len(dataset.units()) == 2 * 4 * 2
    assert custom.subjects.sha256 == hashlib.sha256((tmp_path / "subjects.csv").read_bytes()).hexdigest()
    assert Custom.from_record(json.loads(json.dumps(custom.record()))) == custom  # spec.json round trip
    only_prompts = read_custom(prompts=tmp_path / "prompts.csv").apply(make_toy_dataset(tmp_path / "data"))
    assert [s.id for s in only_prompts.subjects][:2] == ["man.beach", "man.snow"]


def test_controlnet_takes_the_subjects_own_prompt(tmp_path):
    from actionbench.api.config import build_config
    from actionbench.custom import read_custom
    from actionbench.api.method import Artifact
    from actionbench.api.registry import get_method

    dataset = read_custom(*_files(tmp_path)).apply(make_toy_dataset(tmp_path / "data"))
    cls = get_method("controlnet")
    method = cls(None, build_config(cls.Config))
    artifact = Artifact("controlnet", "cheer", {}, {}, meta={"action_text": "cheering"})
    assert method.prompt(dataset.subject("fox.snow"), artifact) == "a red fox cheering in the snow"
    assert method.prompt(make_toy_dataset(tmp_path / "data").subject("man"), artifact) == "a man"


def test_a_subject_in_several_prompts_is_one_class_for_the_judge(tmp_path):
    from actionbench.custom import read_custom
    from actionbench.api.evaluator import JudgeRequest
    from actionbench.evaluators.clip_zero_shot import TinyCLIPJudge
    from actionbench.results.check import prediction_conflicts

    dataset = read_custom(*_files(tmp_path)).apply(make_toy_dataset(tmp_path / "data"))
    judge = TinyCLIPJudge(dataset)
    assert list(judge.prompt_ensembles()["subject"])[:2] == ["firefighter.beach", "fox.beach"]
    assert judge.subject_class("fox.snow") == "fox.beach"
    image = dataset.actions[0].exemplars[0].path
    verdicts = judge.judge([JudgeRequest(f"cheer/{s}/0", "cheer", s, image) for s in ("fox.beach", "fox.snow")])
    assert verdicts[0].subject_ok == verdicts[1].subject_ok  # the same words: the same decision
    assert verdicts[0].detail["subject_p_target"] == pytest.approx(verdicts[1].detail["subject_p_target"], abs=1e-6)
    records = [{"unit_id": v.unit_id, "action_id": "cheer", "subject_id": s, "action_ok": v.action_ok,
                "subject_ok": v.subject_ok, "detail": v.detail} for v, s in zip(verdicts, ("fox.beach", "fox.snow"))]
    assert prediction_conflicts(records) == []


def test_a_judge_made_for_fixed_subjects_refuses_your_own(tmp_path):
    from actionbench.custom import read_custom
    from actionbench.api.evaluator import Evaluator

    class FixedSubjects(Evaluator):
        name = "fixed"

        def judge(self, requests):
            return []

    dataset = make_toy_dataset(tmp_path / "data")
    FixedSubjects(dataset)  # the dataset's own subjects: fine
    with pytest.raises(ConfigError, match=r"judge 'fixed' knows only .*custom subjects \(subjects\.csv"):
        FixedSubjects(read_custom(*_files(tmp_path)).apply(dataset))


def test_eval_with_your_own_subjects_and_prompts(tmp_path):
    """One subject in two prompts on the tiny model: 8 actions x 2 prompts x 2 images, judged, recorded, kept
    apart from the standard protocol on the board."""
    from click.testing import CliRunner

    from actionbench.cli import main
    from actionbench.leaderboard import add_result, validate_results
    from actionbench.leaderboard.validate import ranked
    from actionbench.run.runner import open_existing_run

    subjects, prompts = _files(tmp_path, subjects="id,category,name\nfox,animal,a red fox\n")
    out = tmp_path / "run"
    base = ["eval", "--method", "sd", "--dataset", "synthetic", "--backbone", "tiny", "--judge", "tiny",
            "--preset", "smoke", "--device", "cpu", "--out", str(out)]
    cli = CliRunner()
    result = cli.invoke(main, [*base, "--subjects", str(subjects), "--prompts", str(prompts)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    custom = results["spec"]["custom"]
    assert custom["subjects"]["sha256"] == hashlib.sha256(subjects.read_bytes()).hexdigest()
    assert custom["prompts"]["file"] == "prompts.csv" and len(custom["prompts"]["rows"]) == 2
    assert {r["subject_id"] for r in results["records"]} == {"fox.beach", "fox.snow"}
    assert results["metrics"]["n"] == 32 and set(results["metrics"]["per_category"]) == {"animal"}
    assert validate_results(out / "results.json") == []
    assert len(open_existing_run(out).units()) == 32  # the folder alone says what was drawn
    assert not ranked(results)
    with pytest.raises(ConfigError, match=r"custom subjects \(subjects\.csv.*never ranks it .*--allow-partial"):
        add_result(out, tmp_path / "board")
    # the same folder without the files is another spec
    result = cli.invoke(main, base)
    assert result.exit_code != 0 and "differs in: custom" in result.output


def test_bad_file_stops_eval_before_anything_is_made(tmp_path):
    from click.testing import CliRunner

    from actionbench.cli import main

    subjects, _ = _files(tmp_path, subjects="id,category,name\nfox,animal,a fox\nfox,animal,a red fox\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["eval", "--method", "sd", "--dataset", "synthetic", "--backbone", "tiny",
                                       "--judge", "tiny", "--preset", "smoke", "--out", str(out),
                                       "--subjects", str(subjects)])
    assert result.exit_code == 2 and "line 3: id 'fox' repeats line 2" in result.output
    assert not out.exists()
