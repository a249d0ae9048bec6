"""Batched judging vs one image at a time (the tiny CLIP judge, synthetic exemplar images).

    python benchmarks/judge_batching.py [--images 64] [--batch 32] [--repeats 3]
"""
from __future__ import annotations

import argparse

import _common  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--judge", default="tiny")
    args = parser.parse_args()

    from actionbench.dataset import load_dataset
    from actionbench.api.evaluator import JudgeRequest
    from actionbench.run.runner import make_evaluator

    data = load_dataset("synthetic")
    exemplars = [(a, ex) for a in data.actions for ex in a.exemplars][: args.images]
    subject = data.subjects[0]
    requests = [JudgeRequest(f"{a.id}/{subject.id}/{ex.index}", a.id, subject.id, ex.path) for a, ex in exemplars]
    judge = make_evaluator(args.judge, data)
    judge.judge(requests[:2])  # load the model and encode the class prompts once, outside the timing

    def batched():
        return [v for i in range(0, len(requests), args.batch) for v in judge.judge(requests[i:i + args.batch])]

    def single():
        return [judge.judge([r])[0] for r in requests]

    same = [(v.action_ok, v.subject_ok) for v in batched()] == [(v.action_ok, v.subject_ok) for v in single()]
    t_batch = _common.best_of(batched, args.repeats)
    t_single = _common.best_of(single, args.repeats)
    print(f"machine: {_common.machine()}")
    print(f"judge {args.judge}, {len(requests)} images, batch {args.batch}, min of {args.repeats}")
    print(f"one at a time: {t_single:.3f} s ({1000 * t_single / len(requests):.1f} ms/image)   "
          f"batched: {t_batch:.3f} s ({1000 * t_batch / len(requests):.1f} ms/image)")
    print(f"same verdicts: {same}")
    print(f"speed-up batched vs one at a time: {t_single / t_batch:.2f}x")


if __name__ == "__main__":
    main()
