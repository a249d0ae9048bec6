"""Methods behind one interface (``actionbench.api.method.Method``). Import as ``actionbench.methods``.

Built-in names map to these modules in ``actionbench.api.registry.BUILTIN_METHODS`` (lazy, so listing
methods imports no torch). Third-party methods register through the entry-point group
``actionbench.methods`` or are named as ``package.module:Class``.
"""
