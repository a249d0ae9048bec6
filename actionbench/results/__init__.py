"""The results record and what is computed from it: ``record`` builds one, ``schema`` declares its shape,
``check`` and ``verify`` check it alone and against its run folder, ``machine`` describes where it was
made; ``metrics``, ``stats``, ``floor`` and ``compare`` are the numbers and intervals inside it.

Below ``actionbench.run`` and above ``actionbench.api`` (pyproject's import-linter contracts): reading,
checking and comparing results never imports the runner.
"""
