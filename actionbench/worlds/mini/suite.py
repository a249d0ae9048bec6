"""The ``mini`` suite: the shipped mini model, the mini dataset and the exact mini judge.

Its method settings are the suite's own protocol; an empty table means every method runs at
its own (Stable Diffusion 2.1) defaults, as the first mini leaderboard rows did.
"""
from actionbench.spec import Suite

MINI_SUITE = Suite(
    name="mini",
    backbone="mini",
    dataset="mini",
    judge="mini",
    description="ActionBench-mini: the offline world (shipped model, rendered exemplars, exact judge)",
)
