"""The mini suites: a world's model, its dataset and its exact judge, one suite per world version.

``mini`` is the world ``world.PLAIN_NAME_WORLD`` (v1 for now); ``mini-v1`` and ``mini-v2`` name theirs.
Their method settings are the suite's own protocol; an empty table means every method runs at
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
MINI_V1_SUITE = Suite(
    name="mini-v1",
    backbone="mini-v1",
    dataset="mini-v1",
    judge="mini-v1",
    description="ActionBench-mini v1: the first offline world, under its versioned name (the same numbers as mini)",
)
MINI_V2_SUITE = Suite(
    name="mini-v2",
    backbone="mini-v2",
    dataset="mini-v2",
    judge="mini-v2",
    description="ActionBench-mini v2: exemplars that share their action's context signature (docs/mini-v2-design.md)",
)
