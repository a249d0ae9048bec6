"""The closing line of `eval`: intervals on every metric, the null floor where a board has it, and judge
labels that cannot be read as another judge's name."""
from __future__ import annotations

import json
import re

from actionbench.summary import FLOOR_METHOD, closing_lines, find_floor


def _record(method="sd", suite="mini", judge=("mini", "2"), total=(0.1766, 0.08, 0.295)):
    metric = lambda mean, lo, hi: {"mean": mean, "ci95": [lo, hi]}  # noqa: E731
    return {"spec": {"method": method, "suite": suite, "dataset": "mini", "backbone": {"id": "mini"}},
            "judge": {"name": judge[0], "version": judge[1]},
            "metrics": {"n": 368, "action": metric(0.1902, 0.12, 0.27), "subject": metric(0.9538, 0.91, 0.98),
                        "total": metric(*total), "interval": {"kind": "cluster(action,subject)"}}}


def test_the_closing_line_gives_each_metric_with_its_interval_and_the_judge_with_its_version():
    (line,) = closing_lines(_record())
    assert line == ("sd on mini (mini, judge mini (version 2)): action 19.02% [12.0, 27.0]  subject 95.38% [91.0, 98.0]  "
                    "total 17.66% [8.0, 29.5]  (n=368; 95% intervals, cluster(action,subject))")
    assert "mini-v2" not in line  # the v2 world's judge is called that


def test_the_null_floor_of_the_same_suite_and_judge_is_shown(tmp_path):
    board = tmp_path / "board"
    (board / "results").mkdir(parents=True)
    floor = _record(method=FLOOR_METHOD, total=(0.106, 0.049, 0.213))
    (board / "results" / "mini-null.json").write_text(json.dumps(floor))
    found = find_floor(_record(), [tmp_path / "absent", board])
    lines = closing_lines(_record(), found)
    assert re.fullmatch(r"floor: null total 10\.60% \[4\.9, 21\.3\] on the same suite and judge \(.*mini-null\.json\)",
                        lines[1])
    assert find_floor(_record(judge=("mini", "1")), [board]) is None  # another judge version: another scale
    assert find_floor(_record(method=FLOOR_METHOD), [board]) is None  # the floor itself
    assert find_floor(_record(suite="mini-v2"), [board]) is None  # no entry for that suite


def test_the_dry_runs_judge_line_names_the_judge_and_its_version(tmp_path):
    from actionbench.run.plan import dry_run
    from actionbench.run.runner import RunOptions, RunSpec

    spec = RunSpec.build("test_runner:DummyMethod", {}, backbone="tiny", dataset="synthetic", judge="tiny")
    lines = dry_run(spec, RunOptions(out=tmp_path / "run", device="cpu"))
    (judge_line,) = [line for line in lines if line.startswith("  - judge ")]
    assert re.match(r"  - judge tiny \(version \d+\): ready", judge_line), judge_line
    assert not (tmp_path / "run").exists()  # a dry run writes nothing
