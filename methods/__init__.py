"""Methods behind one interface. Import as ``actionbench.methods``.

The table below maps registry names to lazy ``module:Class`` targets, so listing
methods imports no torch. Third-party methods register through the entry-point group
``actionbench.methods`` or are named as ``package.module:Class``.
"""

BUILTIN_METHODS = {
    "sd": "actionbench.methods.sd:TextOnlySD",
    "textual_inversion": "actionbench.methods.textual_inversion:TextualInversion",
}
