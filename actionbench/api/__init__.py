"""What a method, a judge or a suite is written against: the ``Method`` and ``Evaluator`` interfaces,
their frozen configs, the run spec, and the registry that resolves names to them.

Below the run, results and leaderboard packages: nothing here imports those (pyproject's import-linter
contracts), so a plugin that imports the interface does not pull in the runner.
"""
