"""Run folders record the CPU each process spent, so a table's cost can be summed on a busy machine."""
from __future__ import annotations

import json

from actionbench.run.runfolder import TIMINGS_DIR, ProcessTiming, summed_cpu_time, summed_timings


def test_cpu_time_is_recorded_and_summed_over_processes(tmp_path):
    first = ProcessTiming(tmp_path)
    sum(i * i for i in range(200_000))  # some CPU, so the record is above zero
    first.stage_done("customize", 1.0)
    record = json.loads(first.path.read_text())
    assert record["cpu_time_s"] > 0

    # A second process on the same run, and one from before CPU was recorded.
    (tmp_path / TIMINGS_DIR / "second.json").write_text(json.dumps(
        {"pid": 2, "wall_time_s": 5.0, "cpu_time_s": 4.0, "stage_times_s": {"generate": 5.0}}))
    (tmp_path / TIMINGS_DIR / "older.json").write_text(json.dumps(
        {"pid": 3, "wall_time_s": 2.0, "stage_times_s": {"judge": 2.0}}))

    cpu, recorded, processes = summed_cpu_time(tmp_path)
    assert (recorded, processes) == (2, 3)
    assert abs(cpu - (record["cpu_time_s"] + 4.0)) < 1e-6
    wall, stages, count = summed_timings(tmp_path)  # unchanged: wall and stages of all three
    assert count == 3 and set(stages) == {"customize", "generate", "judge"}


def test_a_run_without_timings_sums_to_nothing(tmp_path):
    assert summed_cpu_time(tmp_path) == (0.0, 0, 0)
