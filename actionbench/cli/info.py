"""methods, judges, suites, check-method: what is registered, and whether an adapter keeps the contract."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from actionbench.errors import ActionBenchError, friendly_errors


def list_registered(registry, describe) -> None:
    """One line per registered name; a plugin that fails to import is listed as broken, not fatal."""
    for entry in registry.entries():
        try:
            line = describe(registry.get(entry.name))
        except ActionBenchError as exc:
            line = f"(broken: {exc})"
        click.echo(f"{entry.name:20s} {line}" + ("" if entry.source == "built-in" else f"  [{entry.source}]"))


@click.command()
@friendly_errors
def methods():
    """List available methods."""
    from actionbench.api.registry import METHODS

    list_registered(METHODS, lambda cls: cls.summary)


@click.command()
@friendly_errors
def judges():
    """List available judges."""
    from actionbench.api.registry import JUDGES

    list_registered(JUDGES, lambda cls: (cls.__doc__ or "").strip().splitlines()[0])


@click.command()
@friendly_errors
def suites():
    """List suites: the backbone, dataset and judge each bundles (--suite NAME)."""
    from actionbench.api.registry import SUITES

    list_registered(SUITES, lambda s: f"{s.backbone} + {s.dataset} + judge {s.judge}: {s.description}")


@click.command(name="check-method")
@click.argument("method")
@click.option("--keep", type=click.Path(path_type=Path), default=None, help="Keep the check's outputs here.")
@friendly_errors
def check_method(method, keep):
    """Run a method adapter through the contract on the tiny backbone and synthetic set."""
    from actionbench.contract import check_method as do_check

    report = do_check(method, workdir=keep)
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.ok else 1)


commands = [methods, judges, suites, check_method]
