"""Running a spec: the runner's stages (customize, generate, judge, results), the run folder they share,
the plan and its ETAs, and the plumbing of a torchrun / accelerate launch.

Above ``actionbench.results`` and ``actionbench.api``, below the leaderboard and the command line
(pyproject's import-linter contracts).
"""
