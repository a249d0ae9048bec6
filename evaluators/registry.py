"""Built-in judges, as lazy targets."""

BUILTIN_EVALUATORS = {
    "clip": "actionbench.evaluators.clip_zero_shot:CLIPZeroShotJudge",
    "tiny": "actionbench.evaluators.clip_zero_shot:TinyCLIPJudge",
}
