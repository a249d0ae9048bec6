"""Cost of re-running a finished run (everything skipped) vs the run itself.

A cheap painting method on the synthetic set with the tiny judge (the whole protocol, 368 images),
so the ratio is an upper bound: a real method's run is far longer, its resume the same.

    python benchmarks/resume_cost.py
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _common  # noqa: F401

from actionbench.api.method import Method, MethodConfig


@dataclass(frozen=True)
class PaintConfig(MethodConfig):
    pass


class Paint(Method):
    name = "paint"
    Config = PaintConfig

    def customize(self, action, out_dir):
        return self.new_artifact(action, meta={"shade": len(action.id) * 20}).save(out_dir)

    def generate(self, artifact, subject, seeds):
        from PIL import Image

        return [Image.new("RGB", (64, 64), (artifact.meta["shade"], s % 251, len(subject.id))) for s in seeds]


def main() -> None:
    from actionbench.run.runner import RunOptions, RunSpec, evaluate, open_run

    spec = RunSpec.build("__main__:Paint", {}, backbone="tiny", dataset="synthetic", judge="tiny")
    out = Path(tempfile.mkdtemp(prefix="resume-")) / "run"
    open_run(spec, RunOptions(out=out.parent / "warm"))  # imports, tiny backbone, synthetic set: outside the timing
    t0 = time.perf_counter()
    evaluate(spec, RunOptions(out=out))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate(spec, RunOptions(out=out))
    again = time.perf_counter() - t0
    t0 = time.perf_counter()
    open_run(spec, RunOptions(out=out))
    opening = time.perf_counter() - t0
    print(f"machine: {_common.machine()}")
    print("paint method + tiny judge, synthetic set (368 images), in one process")
    print(f"full run: {first:.2f} s   rerun of the finished run: {again:.2f} s "
          f"(of which loading backbone + dataset: {opening:.2f} s)")
    print(f"resume/run ratio: {again / first:.3f}  (skipping the 368 units itself: {max(again - opening, 0):.2f} s)")


if __name__ == "__main__":
    main()
