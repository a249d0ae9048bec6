"""Test setup: offline, no progress bars, a private cache, and shared tiny fixtures."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ACTIONBENCH_NO_PROGRESS"] = "1"
os.environ.setdefault("ACTIONBENCH_HOME", tempfile.mkdtemp(prefix="actionbench-test-home-"))
# Tiny models gain nothing from intra-op threads, and on 2 shared cores two threads per process
# oversubscribe (measured: one P+ step 8 s with 2 threads vs 0.17 s with 1 under load).
# Subprocesses the tests start inherit this too.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO.parent / "shared" / "upstream" / "ActionBench"


@pytest.fixture(scope="session", autouse=True)
def clean_source_for_test_runs():
    """Runs made by tests stand for runs from a clean checkout, whether or not the tree under test has
    uncommitted edits (a dirty run needs --allow-dirty on the board); tests of that refusal set it themselves."""
    from actionbench import code_state

    real = code_state.source_commit
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(code_state, "source_commit", lambda: (real()[0], False))
        yield


@pytest.fixture(scope="session")
def tiny_backbone():
    """One tiny backbone for the session; tests also check nobody writes its weights."""
    from actionbench.backbone import load_backbone

    return load_backbone("tiny")


@pytest.fixture(scope="session")
def toy_action(tmp_path_factory):
    """An action of four small drawn exemplars (no dataset needed)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from actionbench.dataset import Action, Exemplar

    folder = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    exemplars = []
    for i in range(1, 5):
        image = Image.new("RGB", (72, 72), tuple(int(c) for c in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(image)
        draw.line([(36, 20), (36, 50)], fill=(0, 0, 0), width=5)
        draw.line([(36, 30), (20 + i, 10), (36, 30), (52 - i, 10)], fill=(0, 0, 0), width=4)
        path = folder / f"{i:02d}.png"
        image.save(path)
        exemplars.append(Exemplar("cheer", i, path, f"A person number {i} {{}} on a plain background."))
    return Action("cheer", "cheering with both arms raised", tuple(exemplars))


@pytest.fixture
def subject():
    from actionbench.dataset import Subject

    return Subject("man", "a man", "human")
