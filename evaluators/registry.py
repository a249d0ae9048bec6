"""Built-in judges, as lazy targets."""

BUILTIN_EVALUATORS = {
    "clip": "actionbench.evaluators.clip_zero_shot:CLIPZeroShotJudge",
    "tiny": "actionbench.evaluators.clip_zero_shot:TinyCLIPJudge",
    "few_shot": "actionbench.evaluators.few_shot:FewShotJudge",
    "human": "actionbench.evaluators.human:HumanJudge",
    "mini": "actionbench.evaluators.mini_judge:MiniJudge",
}
