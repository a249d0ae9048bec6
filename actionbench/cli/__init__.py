"""The ``actionbench`` command line: a thin click layer; each command calls one public function.

Commands live by concern: ``run`` (customize, generate, judge, eval), ``data`` (download, verify),
``board`` (leaderboard, validate), ``verify`` (rejudge, reproduce: checking a leaderboard entry),
``info`` (methods, judges, suites, check-method), plus the human-evaluation tools and the mini
world's commands.
"""
from __future__ import annotations

import click

from actionbench.evaluators.human.cli import commands as human_commands
from actionbench.worlds.mini.lab.cli import commands as mini_commands

from . import board, compare, data, info, run, verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="actionbench")
def main():
    """ActionBench: benchmark action customization in text-to-image diffusion."""


for _command in (data.commands + info.commands + run.commands + board.commands + compare.commands + verify.commands
                 + human_commands + mini_commands):
    main.add_command(_command)

if __name__ == "__main__":
    main()
