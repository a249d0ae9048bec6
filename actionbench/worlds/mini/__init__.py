"""ActionBench-mini: an offline world where methods really learn and scores are exact.

* World (``captions``): 32x32 renders of ``actionbench.worlds.synthetic`` (23 subjects + 10 generic
  exemplar people, 19 poses). Training captions name the subject and only the 11 *everyday* poses
  ("a cat standing"); images of the 8 benchmark actions are in the training set too, but their
  captions never name the action, so the model can draw them while text alone cannot ask for them.
  A customization method has to find them from exemplars.
* Base model ("mini" backbone, ``model``): Stable Diffusion's structure so every method applies
  unchanged, with a fixed, exact pixel-shuffle "VAE" (``vae``); trained by ``lab.train``.
* Dataset ("mini", ``dataset``), judge ("mini", ``judge``: an exact CNN classifier of pose and
  subject), pose ControlNet (``lab.controlnet``) and the ``actionbench mini`` commands (``lab.cli``).
* Weights ship as package data (``actionbench/data/mini``, read through ``folders``); the commands refuse to
  overwrite them unless asked (``--replace-shipped``).

Versions (``world``): each is a small frozen ``WorldSpec`` (resolution, UNet blocks, caption rules,
signatures, data folder) read by the one set of functions here. ``mini-v1`` is the world above
(the plain name ``mini`` for now); ``mini-v2`` (docs/mini-v2-design.md) adds attributes and
background types, exemplars that share their action's context signature (``exemplars``) and
cross-attention at 16x16 too. ``lab.check`` samples a model for a quick look.

Runtime and lab: the modules here are what a run needs (the world, its model, data, judges and suites); what
makes a world (training, fitting, measuring, checking) is in ``lab``, which the runtime never imports.

Nothing heavy is imported here: the CLI loads ``actionbench.worlds.mini.lab.cli`` at start-up.
"""
