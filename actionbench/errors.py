"""Typed errors. Every message says what was wrong, the value, and the fix."""


class ActionBenchError(Exception):
    """Base class for errors meant for the user (the CLI prints them without a traceback)."""


class ConfigError(ActionBenchError, ValueError):
    """A config override, preset or spec is invalid."""


class RegistryError(ActionBenchError, KeyError):
    """An unknown or broken method / evaluator name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetError(ActionBenchError):
    """A dataset file is missing, corrupt or of an unknown version."""


class IntegrityError(DatasetError):
    """A file's size or SHA-256 does not match the manifest."""


class ArtifactError(ActionBenchError):
    """An artifact folder is missing, truncated or not in the safetensors format."""


class SchemaError(ActionBenchError):
    """A manifest or results file has the wrong schema or version."""


class TrainingError(ActionBenchError):
    """Training diverged (for example a NaN loss)."""


def friendly_errors(func):
    """For CLI commands: print ActionBench errors as one clear line (no traceback) and exit with status 2."""
    import functools
    import sys

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ActionBenchError as exc:
            import click

            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)

    return wrapper


def optional_import(module: str, extra: str, feature: str):
    """Import a single-feature dependency, or say which ``pip install "actionbench[extra]"`` brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ActionBenchError(
            f"{feature} needs the package that provides '{module}' ({exc}); "
            f'install it with: pip install "actionbench[{extra}]"'
        ) from None
