"""ADI's action-different samples on mini v2: the world's oracle, and what the judge reads in the samples."""
from __future__ import annotations

import numpy as np
import pytest

from actionbench.dataset import load_dataset
from actionbench.api.registry import get_evaluator, get_suite
from actionbench.worlds.mini.lab.adi_samples_check import MEASURES, check_samples, context_of, read_sample
from actionbench.worlds.mini.exemplars import ORACLE_POSES, render_oracle
from actionbench.worlds.mini.judge_v2 import NO_TYPE, PERSON, Reading


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    return load_dataset("mini-v2", root=tmp_path_factory.mktemp("mini-v2"))


def test_every_v2_exemplar_has_an_oracle_of_its_own_context_in_everyday_poses(v2):
    """The failure it prevents: `adi --preset oracle` refusing on the world it was made for."""
    exemplar = v2.action("salute").exemplars[0]
    images = exemplar.oracle(5)
    assert len(images) == 5 and images[0].size == exemplar.image().size
    assert [np.asarray(i).tobytes() for i in images] == [np.asarray(i).tobytes() for i in render_oracle("salute", 1, 5)]
    assert np.array_equal(np.asarray(images[0]), np.asarray(images[4]))  # the poses cycle: 4 of them
    assert not np.array_equal(np.asarray(images[0]), np.asarray(exemplar.image()))  # another pose
    assert ORACLE_POSES == ("stand", "walk", "run", "lie")  # the poses ADI's default prompts ask for


def test_a_sample_is_as_assumed_only_with_the_person_the_context_and_another_pose():
    context = context_of({"attributes": ["cap", "uniform"], "background": "type:outdoors"})
    assert context == (("uniform", "cap"), "outdoors")  # the judge's attribute order
    assert context_of({"attributes": [], "background": "sky"}) == ((), NO_TYPE)
    good = Reading("stand", PERSON, ("uniform", "cap"), "outdoors")
    assert read_sample(good, "salute", context) == dict.fromkeys(MEASURES, True)
    assert not read_sample(good._replace(attributes=("uniform",)), "salute", context)["as_assumed"]
    assert not read_sample(good._replace(background_type="room"), "salute", context)["context_kept"]
    assert not read_sample(good._replace(subject="cat"), "salute", context)["person_kept"]
    assert not read_sample(good._replace(pose="salute"), "salute", context)["pose_changed"]


def test_the_judge_reads_the_oracle_as_assumed_and_the_exemplars_themselves_as_no_pose_change(v2, monkeypatch):
    from actionbench.worlds.mini.lab import adi_samples_check

    suite, judge = get_suite("mini-v2"), get_evaluator("mini-v2")(v2)
    record = check_samples(suite, None, v2, judge, sources=("oracle",), log=lambda _: None)
    oracle = record["sources"]["oracle"]
    assert oracle["n"] == 8 * 10 * 4 and oracle["pose_changed"] >= 0.95 and oracle["as_assumed"] >= 0.6
    # "generated" samples that are the exemplar itself: nothing changed the pose
    monkeypatch.setattr(adi_samples_check, "action_different_samples",
                        lambda backbone, exemplars, cfg: [([e.image()] * 2, {}) for e in exemplars])
    same = check_samples(suite, None, v2, judge, sources=("generated",), log=lambda _: None)["sources"]["generated"]
    assert same["pose_changed"] <= 0.1 and same["context_kept"] >= 0.8
