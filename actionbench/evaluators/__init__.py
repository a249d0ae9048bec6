"""Judges: automatic (CLIP zero-shot, few-shot) and human. Import as ``actionbench.evaluators``."""
from actionbench.api.evaluator import Evaluator, Judgment, JudgeRequest

__all__ = ["Evaluator", "Judgment", "JudgeRequest"]
