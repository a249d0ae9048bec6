"""download and verify: the dataset's files, checked against the manifest."""
from __future__ import annotations

from pathlib import Path

import click

from actionbench.errors import friendly_errors


@click.command()
@click.option("--version", "version", default="v1", show_default=True)
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Target folder (default: cache).")
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path), default=None,
              help="Import from a local clone, folder or zip instead of downloading.")
@friendly_errors
def download(version, root, source):
    """Fetch ActionBench images from the pinned upstream commit and verify every file."""
    from actionbench.download import download as do_download

    click.echo(str(do_download(version=version, root=root, source=source)))


@click.command()
@click.option("--version", "version", default="v1", show_default=True)
@click.option("--root", type=click.Path(path_type=Path), default=None)
@friendly_errors
def verify(version, root):
    """Re-check every dataset file against the manifest's SHA-256."""
    from actionbench.download import verify as do_verify

    click.echo(str(do_verify(version=version, root=root)))


commands = [download, verify]
