"""benchmarks/_volume.py (speed.py's section floor): a job's UNet rows come from the run's own plan, and a
table counts ADI's action-different images once (later ADI rows reuse the cache the first one made)."""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _volume  # noqa: E402

from actionbench.backbone import load_backbone  # noqa: E402
from actionbench.dataset import load_dataset  # noqa: E402
from actionbench.methods import adi_samples  # noqa: E402
from actionbench.api.spec import RunSpec  # noqa: E402
from actionbench.worlds.mini.lab.table import rows_by_name  # noqa: E402


def test_adi_rows_are_its_identifier_steps_plus_its_action_different_images_as_on_a_clean_machine(tmp_path,
                                                                                                  monkeypatch):
    backbone, dataset = load_backbone("mini"), load_dataset("mini")
    adi, = rows_by_name(["adi"])
    cfg = RunSpec.build("adi", suite="mini").config
    monkeypatch.setenv("ACTIONBENCH_HOME", str(tmp_path))  # this machine's cache holds an action's images ...
    for _, key in adi_samples.cache_keys(backbone, dataset.actions[0].exemplars, adi_samples.action_different_settings(cfg)):
        done = adi_samples.action_different_cache_root(cfg) / key
        done.mkdir(parents=True)
        (done / "provenance.json").write_text("{}")
    rows = _volume.row_plan(adi, "mini", backbone, dataset)  # ... and the floor still counts them: a clean machine's
    exemplars = sum(len(a.exemplars) for a in dataset.actions)
    identifier = 3 * cfg.train_steps * cfg.batch_size * 3 * len(dataset.actions)  # anchor, c-bar and a-bar rows
    group = cfg.action_different
    per_exemplar = 3 * group.tune_steps + len(group.prompts) * group.inference_steps * 2
    assert rows["tuning"] == exemplars * per_exemplar
    assert rows["customize"] == identifier + rows["tuning"]
    assert rows["generate"] == len(dataset.units()) * cfg.sampler.num_inference_steps * 2
    context_only, = rows_by_name(["adi_context_mask_only"])  # no action mask: no action-different images
    assert _volume.row_plan(context_only, "mini", backbone, dataset)["tuning"] == 0


def test_a_table_pays_the_action_different_images_once(monkeypatch):
    """Also when this machine has them cached (CI's main job makes them before the tests run)."""
    monkeypatch.setattr(_volume, "row_cpu_seconds", lambda backbone: (1e-3, 3e-3))
    lines = _volume.floor_report("mini", ["adi", "adi_action_mask_only"], None, lambda folder: None,
                                 target=("the table", 60))
    counts = {m.group(1): float(m.group(2).replace(",", "")) for m in
              (re.match(r"\s+(adi\S*)\s+([\d,]+)\s", line) for line in lines) if m}
    backbone, dataset = load_backbone("mini"), load_dataset("mini")
    first, second = (_volume.row_plan(row, "mini", backbone, dataset) for row in rows_by_name(["adi", "adi_action_mask_only"]))
    assert first["tuning"] > 0 and second["tuning"] == first["tuning"]  # the same action-different images
    assert counts["adi"] == first["customize"]
    assert counts["adi_action_mask_only"] == second["customize"] - second["tuning"]  # made once, then reused
    assert any("out of reach" in line or "reachable" in line for line in lines)
