"""The run's ETA against a fake clock: never shorter than what the current stage's own line shows."""
from __future__ import annotations

import pytest

from actionbench.run.plan import RunPlan, StagePlan


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _plan(clock) -> RunPlan:
    plan = RunPlan(stages=[StagePlan("customize", 8, "actions", 800.0), StagePlan("generate", 368, "images", 3680.0),
                           StagePlan("judge", 368, "images", 184.0)], row_seconds=0.05, clock=clock)
    plan.estimate()
    return plan


def test_before_any_stage_the_eta_is_the_plan():
    plan = _plan(FakeClock())
    assert plan.remaining_seconds() == pytest.approx((800 + 3680 + 184) * 0.05)


def test_a_stage_running_slower_than_planned_sets_the_run_eta():
    clock = FakeClock()
    plan = _plan(clock)
    customize, generate, judge = plan.stages
    plan.start(customize)
    clock.now += 40.0  # the planned 40 s
    plan.finish(customize)  # measured rate equals the probe's: 40 s / 800 rows
    assert plan.row_seconds == pytest.approx(0.05)
    plan.start(generate)  # planned 184 s; it runs at twice that
    clock.now += 30.0
    fraction = 30.0 / 368.0  # the share done after 30 s at 2x the planned time
    stage_left = 30.0 * (1 - fraction) / fraction  # what the stage's line says: 338 s
    run_left = plan.remaining_seconds(generate, fraction)
    assert run_left >= stage_left
    assert run_left == pytest.approx(stage_left + 184 * 0.05)  # and the judge's planned time after it


def test_a_stage_running_faster_than_planned_keeps_the_plans_figure():
    clock = FakeClock()
    plan = _plan(clock)
    generate = plan.stages[1]
    plan.start(generate)
    clock.now += 10.0
    run_left = plan.remaining_seconds(generate, 0.5)  # stage line: 10 s left; plan: 92 s
    assert run_left == pytest.approx(0.5 * 3680 * 0.05 + (800 + 184) * 0.05)
    assert run_left >= 10.0


def test_no_progress_yet_and_a_finished_stage_are_well_defined():
    clock = FakeClock()
    plan = _plan(clock)
    judge = plan.stages[2]
    plan.start(judge)
    assert plan.remaining_seconds(judge, 0.0) == pytest.approx((800 + 3680 + 184) * 0.05)
    clock.now += 5.0
    assert plan.remaining_seconds(judge, 1.0) == pytest.approx((800 + 3680) * 0.05)


def test_each_stage_keeps_its_own_rate_and_a_finished_stage_its_measured_time():
    """Generation's probe rate (text encoder, VAE and guidance included) is not replaced by training's measured one."""
    clock = FakeClock()
    plan = _plan(clock)
    customize, generate, judge = plan.stages
    generate.row_seconds = 0.1  # its own probe: twice the UNet-row rate
    plan.estimate()
    assert generate.seconds == pytest.approx(368.0) and plan.total_seconds() == pytest.approx(40 + 368 + 9.2)
    plan.start(customize)
    clock.now += 80.0  # twice as slow as planned
    plan.finish(customize)
    assert customize.seconds == pytest.approx(80.0) and generate.seconds == pytest.approx(368.0)
    assert plan.remaining_seconds() == pytest.approx(368 + 9.2)
    plan.finish(customize)  # a second finish counts nothing twice
    assert plan.remaining_seconds() == pytest.approx(368 + 9.2)


def test_the_image_probe_separates_the_cost_of_a_step_from_the_fixed_cost(monkeypatch):
    from actionbench import training
    from actionbench.api.config import SamplerConfig
    from actionbench.run.plan import probe_image_seconds

    clock = FakeClock()

    def fake_sample(backbone, embeds, seeds, sampler):  # 3 s fixed + 0.5 s per step, for the batch of 4
        clock.now += 3.0 + 0.5 * sampler.num_inference_steps
        return [None] * len(seeds)

    monkeypatch.setattr(training, "sample_images", fake_sample)
    monkeypatch.setattr(training, "encode_prompts", lambda backbone, texts: texts)
    sampler = SamplerConfig(num_inference_steps=40, batch_size=4)
    assert probe_image_seconds(None, sampler, clock=clock) == pytest.approx((3.0 + 0.5 * 40) / 4)
    assert probe_image_seconds(None, sampler, 1.5, clock=clock) == pytest.approx((3.0 + 0.75 * 40) / 4)


def test_a_stage_takes_its_rate_from_its_own_first_units(monkeypatch):
    """generate: after a warm-up pair, two pairs' seconds per row; customize: the first action's, weighed by rows
    (an action whose action-different images are cached has fewer)."""
    from types import SimpleNamespace

    from actionbench.run import plan as plan_module
    from actionbench.run.plan import StageRate

    said: list[str] = []
    monkeypatch.setattr(plan_module, "say", said.append)
    monkeypatch.setattr(plan_module, "write_status", lambda run, force=False: None)
    plan = _plan(FakeClock())
    customize, generate = plan.stages[:2]  # probe: 800 rows x 0.05 s = 40 s; 3680 rows x 0.05 s = 184 s
    rate = StageRate(SimpleNamespace(plan=plan), generate)
    rate.add(2, 20.0, 9.0)  # the first pair sets things up: not counted
    assert generate.seconds == pytest.approx(184.0) and not said
    rate.add(2, 20.0, 1.5)
    rate.add(2, 20.0, 1.3)  # 2.8 s for 40 rows (4 images): 0.07 s a row, 0.7 s an image
    assert generate.seconds == pytest.approx(0.7 * 368)
    assert plan.remaining_seconds() == pytest.approx(40.0 + 0.7 * 368 + 184 * 0.05)
    rate.add(2, 20.0, 50.0)  # later pairs do not move it again
    assert generate.seconds == pytest.approx(0.7 * 368)
    first = StageRate(SimpleNamespace(plan=plan), customize, warmup=0, timed=1)
    first.add(1, 125.0, 10.0)  # the first action: 125 of the stage's 800 rows in 10 s
    assert customize.seconds == pytest.approx(64.0)
    assert said == ["  generate: about 4m18s at the rate of its first 4 images (the probe said about 3m04s)",
                    "  customize: about 1m04s at the rate of its first action (the probe said about 40s)"]
