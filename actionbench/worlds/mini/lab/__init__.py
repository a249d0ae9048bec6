"""The mini world's lab: what makes a world rather than what runs one.

Training the base model (``train``) and its pose ControlNet (``controlnet``), fitting the judges (``judge_fit``,
``judge_v2_fit``), measuring a protocol (``protocol``), looking at a model (``check``), checking two judges against
each other (``judge_check``), the masks and ADI-samples diagnostics (``masks``, ``adi_samples_check``), the method
table and its verdicts (``table``, ``verdict``, ``verdict_v3``) and the ``actionbench mini`` commands (``cli``).

A run needs none of it: the runtime in ``actionbench.worlds.mini`` never imports the lab (``tests/test_layers.py``),
so the lab can grow its tools without a benchmark run loading them.
"""
