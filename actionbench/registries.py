"""The method and evaluator registries (lazy: listing names imports no torch)."""
from __future__ import annotations

from .registry import Registry

_methods: Registry | None = None
_evaluators: Registry | None = None

METHOD_GROUP = "actionbench.methods"
EVALUATOR_GROUP = "actionbench.evaluators"


def method_registry() -> Registry:
    global _methods
    if _methods is None:
        from actionbench.methods import BUILTIN_METHODS

        _methods = Registry("method", "actionbench.method:Method", METHOD_GROUP, BUILTIN_METHODS)
    return _methods


def evaluator_registry() -> Registry:
    global _evaluators
    if _evaluators is None:
        from actionbench.evaluators.registry import BUILTIN_EVALUATORS

        _evaluators = Registry("judge", "actionbench.evaluators.base:Evaluator", EVALUATOR_GROUP, BUILTIN_EVALUATORS)
    return _evaluators


def get_method(name: str):
    """The Method class for a registry name or ``package.module:Class``."""
    return method_registry().get(name)


def list_methods():
    return method_registry().entries()


def get_evaluator(name: str):
    return evaluator_registry().get(name)


def list_evaluators():
    return evaluator_registry().entries()
