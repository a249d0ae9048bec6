"""Methods behind one interface. Import as ``actionbench.methods``.

The table below maps registry names to lazy ``module:Class`` targets, so listing
methods imports no torch. Third-party methods register through the entry-point group
``actionbench.methods`` or are named as ``package.module:Class``.
"""

BUILTIN_METHODS = {
    "sd": "actionbench.methods.sd:TextOnlySD",
    "controlnet": "actionbench.methods.controlnet:ControlNetPose",
    "dreambooth": "actionbench.methods.dreambooth:DreamBooth",
    "textual_inversion": "actionbench.methods.textual_inversion:TextualInversion",
    "reversion": "actionbench.methods.reversion:ReVersion",
    "custom_diffusion": "actionbench.methods.custom_diffusion:CustomDiffusion",
    "p_plus": "actionbench.methods.p_plus:PPlus",
    "adi": "actionbench.methods.adi:ADI",
}
