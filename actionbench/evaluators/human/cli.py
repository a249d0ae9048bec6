"""Commands for human evaluation: annotate, judge-human, agreement, export-labels, import-labels.

``actionbench.cli`` adds every command in ``commands`` to the ``actionbench`` group.
"""
from __future__ import annotations

from pathlib import Path

import click

from actionbench.errors import friendly_errors

from .store import DEFAULT_DB, LABELS_DB_ENV, TIE_RULES


db_option = click.option("--db", type=click.Path(path_type=Path), envvar=LABELS_DB_ENV, default=DEFAULT_DB,
                         show_default=True, help=f"Labels database (SQLite); also ${LABELS_DB_ENV}.")
ties_option = click.option("--ties", type=click.Choice(TIE_RULES), default="no", show_default=True,
                           help="What a tied human vote counts as (exclude: leave the image out).")
root_option = click.option("--root", type=click.Path(path_type=Path), default=None,
                           help="Dataset root (default: cache).")
run_option = click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                          default=None, help="A run folder: its images' labels, one row per unit (unit_id, run).")


def _open_run(run_dir, root):
    if run_dir is None:
        return None
    from actionbench.run.runner import open_existing_run

    return open_existing_run(run_dir, data_root=root)


@click.command()
@click.argument("runs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@db_option
@click.option("--port", default=8765, show_default=True, help="Port (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on. Anything but a loopback address exposes the images and the labels to "
                   "everyone who can reach the port.")
@root_option
@friendly_errors
def annotate(runs, db, port, host, root):
    """Serve a local page to label RUN_DIR images (pooled, blinded, random order per annotator).

    With no RUN_DIR, the runs recorded in --db by an earlier session are served again.
    """
    from .server import AnnotationApp, is_local_host, make_server, server_url
    from .store import LabelStore

    store = LabelStore(db)
    app = AnnotationApp.from_runs(store, list(runs), data_root=root)
    server = make_server(app, host, port)
    url = server_url(server, host)
    if not is_local_host(host):
        click.secho(
            f"warning: listening on {host} port {server.server_address[1]}, not only on this machine. Anyone who can "
            "reach this port can open the page, see every image, and add or undo labels under any name: there is "
            "no login, and traffic (images, labels, the page's session token) is not encrypted. The session token "
            "only stops other web sites from sending changes through an annotator's browser. Use this on a "
            "network you trust, and stop the server (Ctrl-C) when you are done.", fg="yellow", err=True)
        if host.strip("[] ") in ("0.0.0.0", "::", ""):
            click.secho("On all interfaces the server answers to this machine's IP addresses (and to localhost), "
                        "not to other names: others open http://<this machine's IP>:"
                        f"{server.server_address[1]}/ (or start with --host <name they will type>).",
                        fg="yellow", err=True)
    click.echo(f"{len(app.items)} images from {len(runs) or len(store.run_dirs())} run(s); answers go to {db}")
    click.echo(f"open {url} in a browser (Ctrl-C stops; every answer is already saved)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()


@click.command(name="judge-human")
@click.option("--out", "-o", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Run folder to judge.")
@db_option
@ties_option
@root_option
@friendly_errors
def judge_human(out, db, ties, root):
    """Judge a run from the human labels' majority (always from the current labels) and write results.json."""
    import time

    from actionbench.results.record import now_iso
    from actionbench.run.runner import judge as do_judge, judge_key, missing_work, open_existing_run, write_results

    from .judge import HumanJudge, clear_judgments

    started, t0 = now_iso(), time.perf_counter()
    run = open_existing_run(out, data_root=root)
    evaluator = HumanJudge(run.dataset, db=db, ties=ties)
    evaluator._check_whole_run(run.out.resolve())  # fail before touching earlier judgments
    key = judge_key(evaluator)
    clear_judgments(run.out, key)  # labels change: never reuse judgments made from older labels
    judged = do_judge(run, evaluator)
    missing = missing_work(run, key)["judgments"]
    path = write_results(run, evaluator, started, time.perf_counter() - t0)
    if missing:
        click.echo(f"note: {len(missing)} of the protocol's {len(run.units())} images are not in {out}; "
                   f"{path.name} holds the {judged} images there and is marked complete: false")
    click.echo(f"results: {path}")


@click.command()
@click.argument("runs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@db_option
@ties_option
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), default=Path("agreement.json"),
              show_default=True, help="Where to write the JSON report.")
@root_option
@friendly_errors
def agreement(runs, db, ties, out, root):
    """Agreement between annotators (Cohen's / Fleiss' kappa) and of automatic judges with the human majority.

    Judges are those with judgments in RUN_DIR/judgments (default: the runs recorded in --db).
    """
    from actionbench.io import atomic_write_json

    from ..agreement import agreement_report, format_report

    report = agreement_report(db, list(runs), ties=ties, data_root=root)
    click.echo(format_report(report))
    atomic_write_json(out, report)
    click.echo(f"\nwritten: {out}")


@click.command(name="export-labels")
@db_option
@click.option("--format", "fmt", type=click.Choice(["csv", "labelstudio"]), default="csv", show_default=True)
@run_option
@root_option
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def export_labels(db, fmt, run_dir, root, out):
    """Write every stored answer to OUT as CSV or Label Studio JSON tasks.

    With --run, only the answers on that run's images, each row naming its unit: the file to
    publish beside the run's leaderboard entry (docs/human-eval.md)."""
    from .interchange import export_labels as do_export
    from .store import LabelStore

    path = do_export(LabelStore(db, create=False), out, fmt, run=_open_run(run_dir, root))
    click.echo(f"written: {path}")
    if fmt == "labelstudio":
        click.echo(f"labelling config for Label Studio: {path.with_name(path.stem + '.label_config.xml')}")


@click.command(name="import-labels")
@db_option
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "labelstudio"]), default="auto",
              show_default=True, help="auto: .json is Label Studio, anything else CSV.")
@run_option
@root_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@friendly_errors
def import_labels(db, fmt, run_dir, root, file):
    """Add answers from a CSV or Label Studio JSON FILE to the labels database (same answer: replaced).

    With --run, rows may name their image by unit_id: each is checked against that run folder."""
    from .interchange import import_labels as do_import
    from .store import LabelStore

    run = _open_run(run_dir, root)  # before the database is created: a bad folder leaves nothing behind
    count = do_import(LabelStore(db), file, fmt, run=run)
    click.echo(f"imported {count} answers into {db}")


commands = [annotate, judge_human, agreement, export_labels, import_labels]
