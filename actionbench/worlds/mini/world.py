"""The versions of the mini world, each a small frozen ``WorldSpec``: what one version renders, how it
captions, the UNet it trains and where its data ships. The code is shared; only these specs differ.

* ``mini-v1`` (``MINI_V1``): the first world. Figures on plain, named or random backgrounds; the
  generic exemplar people are captioned by their look; cross-attention at 8x8 only (4 layers).
* ``mini-v2`` (``MINI_V2``, docs/mini-v2-design.md): figures may wear attributes (uniform, cap, mat,
  ...) and stand on background types (room, beach, gym, studio, outdoors); each action has a context
  *signature* (two attributes and a background type) that 8 of its 10 exemplars show and no caption
  names; the generic people are all "a person"; cross-attention at 16x16 and 8x8 (7 layers).
* ``mini-v3`` (``MINI_V3``, docs/mini-v3-preregistration.md): v2's model, judge and captions, new
  exemplars: the signature is the two attributes only, and every exemplar stands on its own background
  (drawn as v2's off-signature exemplars draw theirs). On v2 the shared background type spoke 2.4x
  louder than the pose to the identifiers (``actionbench mini masks``); here nothing shared but the
  attributes and the pose is left. Its leak counts the signature's attributes only. ``mini-v3b``
  (``MINI_V3B``): the same with the signature on 6 of the 10 exemplars (the pre-registration's lever 2).
  ``mini-v3c`` (``MINI_V3C``, lever 3): v3's exemplars, v2's judge and protocol, and a base model of its own:
  v2's model trained on with three times as many renders of the 8 benchmark poses (still never named).

Names: a backbone, dataset, judge or suite is named after its world (``mini-v1``, ``mini-v2``, ``mini-v3``;
``mini-v2:FOLDER`` for weights a training run wrote). The plain name ``mini`` is ``PLAIN_NAME_WORLD``.

Imports neither torch nor the renderer: the CLI reads it at start-up.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from actionbench.errors import ConfigError

PLAIN_NAME = "mini"
PLAIN_NAME_WORLD = "mini-v1"  # what the plain name "mini" (and "mini:FOLDER") means; the lead flips it to v2


@dataclass(frozen=True)
class Signature:
    """An action's context signature: two attributes and a background type, shown by most of its exemplars."""

    action: str
    attributes: tuple[str, str]
    background_type: str | None  # None: the signature is its attributes only (each exemplar its own background)
    echoes: str  # what in the real ActionBench photos it imitates


@dataclass(frozen=True)
class WorldSpec:
    """One version of the mini world.

    Training renders (``captions.render_world``) and captions (``captions.caption``) read the caption
    rules; ``model`` builds the UNet from the block types; ``folders`` finds the shipped data.
    """

    name: str  # "mini-v1": the backbone, dataset, judge and suite of this world are named so
    data_folder: str  # the shipped folder inside the ``actionbench.data`` package
    resolution: int = 32
    down_block_types: tuple[str, ...] = ("DownBlock2D", "CrossAttnDownBlock2D")  # 16x16, 8x8
    up_block_types: tuple[str, ...] = ("CrossAttnUpBlock2D", "UpBlock2D")  # 8x8, 16x16
    # --- caption rules and the training sampler --------------------------------------------------
    contexts: bool = False  # training renders wear attributes and stand on background types, always named
    person_words: str | None = None  # how captions name every generic person (None: by its own look, as v1)
    plain_backgrounds: tuple[str, ...] | None = None  # named backgrounds used (None: all of BACKGROUNDS)
    attribute_count_weights: tuple[int, ...] = (1,)  # relative weights of 0, 1, 2 ... attributes per render
    typed_background_fraction: float = 0.0  # share of training renders on a background type
    builds: tuple[str, ...] = ("regular",)  # body builds drawn uniformly (never captioned)
    # --- the benchmark data -------------------------------------------------------------------------
    signatures: tuple[Signature, ...] = ()
    signature_exemplars: int = 0  # of an action's 10 exemplars, how many show its signature
    warm_start_from: str | None = None  # the world whose shipped weights a first training stage starts from
    model_world: str | None = None  # the world its model was trained for, model.json's "world" (None: its own)
    model_folder: str | None = None  # the shipped folder of its base model when not ``data_folder``'s
    exemplars_of: str | None = None  # the world whose exemplars it renders (None: its own)
    step_matched: bool = False  # identifier methods (TI, P+, ADI) all train ADI's protocol step count

    @property
    def model_name(self) -> str:
        """The world its model and judge were trained for (``model.json``'s "world")."""
        return self.model_world or self.name

    @property
    def exemplar_world(self) -> str:
        """The world name its exemplars are seeded by (a later lever can keep an earlier world's exemplars)."""
        return self.exemplars_of or self.name

    def unet_config(self) -> dict:
        """The ``UNet2DConditionModel`` config: v1's channels, heads and linear projection, this world's blocks."""
        from actionbench.worlds.mini.vae import LATENT_CHANNELS, PATCH

        return dict(
            sample_size=self.resolution // PATCH,
            in_channels=LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=self.down_block_types,
            up_block_types=self.up_block_types,
            cross_attention_dim=32,
            attention_head_dim=8,
            use_linear_projection=True,  # as in SD 2.x
            norm_num_groups=16,
        )

    def signature(self, action_id: str) -> Signature:
        """The signature of ``action_id``.

        Raises:
            ConfigError: this world has no signature for it (v1 has none at all).
        """
        for sig in self.signatures:
            if sig.action == action_id:
                return sig
        raise ConfigError(f"world {self.name} has no context signature for action {action_id!r}"
                          + (f"; it has: {', '.join(s.action for s in self.signatures)}" if self.signatures else ""))


# The words captions use for attributes and background types: short, plain English, one meaning each.
ATTRIBUTE_WORDS = {
    "uniform": "in a uniform",
    "robe": "in a robe",
    "sportswear": "in sportswear",
    "cap": "wearing a cap",
    "headband": "wearing a headband",
    "scarf": "wearing a scarf",
    "mat": "on a mat",
    "stool": "beside a stool",
}
BACKGROUND_TYPE_WORDS = {
    "room": "in a room",
    "beach": "on a beach",
    "gym": "in a gym",
    "studio": "in a studio",
    "outdoors": "outdoors",
}

MINI_V1 = WorldSpec(name="mini-v1", data_folder="mini")

MINI_V2 = WorldSpec(
    name="mini-v2",
    data_folder="mini-v2",
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    contexts=True,
    person_words="a person",
    # v1's named backgrounds that look like no background type (beach, room, studio and park would)
    plain_backgrounds=("light_blue", "pale_yellow", "sunset", "grey", "street", "mint", "pink", "snow"),
    attribute_count_weights=(3, 2, 1),  # about 1/2 none, 1/3 one, 1/6 two
    typed_background_fraction=0.5,
    builds=("slim", "regular", "broad"),
    signatures=(
        Signature("cheer", ("cap", "scarf"), "studio", "upper-body shots on saturated backdrops"),
        Signature("gesture", ("headband", "scarf"), "studio", "the same backdrops"),
        Signature("handstand", ("sportswear", "cap"), "outdoors", "handstands outdoors"),
        Signature("meditate", ("robe", "mat"), "room", "rooms and yoga mats"),
        Signature("pray", ("robe", "scarf"), "beach", "warm close-ups, sunsets"),
        Signature("salute", ("uniform", "cap"), "outdoors", "soldiers in uniforms and caps"),
        Signature("sit", ("uniform", "stool"), "room", "sitting on a seat indoors"),
        Signature("squat", ("sportswear", "headband"), "gym", "sportswear on gym floors"),
    ),
    signature_exemplars=8,
    warm_start_from="mini-v1",
)

MINI_V3 = replace(
    MINI_V2,
    name="mini-v3",
    data_folder=MINI_V2.data_folder,  # v2's model, judge, ControlNet and protocol: nothing is retrained
    signatures=tuple(replace(s, background_type=None) for s in MINI_V2.signatures),
    warm_start_from=None,
    model_world=MINI_V2.name,
    step_matched=True,
)

MINI_V3B = replace(MINI_V3, name="mini-v3b", signature_exemplars=6)
"""Lever 2 of the v3 pre-registration: as ``mini-v3``, with the signature on 6 of the 10 exemplars instead of 8."""

MINI_V3C = replace(MINI_V3, name="mini-v3c", model_world=None, model_folder="mini-v3c", exemplars_of=MINI_V3.name,
                   warm_start_from=MINI_V2.name)
"""Lever 3 of the v3 pre-registration: ``mini-v3``'s exemplars, judge and protocol (v2's), and a base model that
draws the benchmark poses more readily: v2's shipped model trained on with the 8 benchmark poses rendered three
times as often as an everyday pose (``lab.train.V3C_STAGE``); their captions still never name them."""

MINI_V3P = replace(MINI_V3C, name="mini-v3p", model_folder="mini-v3p")
"""Lever 5 of the v3 pre-registration: as ``mini-v3c`` (v3's exemplars, v2's judge and protocol, v2's model trained
on), with a base model whose training captions describe every pose by its parts in half the renders
(``captions.POSE_PARTS``, ``lab.train.V3P_STAGE``): a text handle on which benchmark pose, never its name."""

MINI_V3Q = replace(MINI_V3C, name="mini-v3q", model_folder="mini-v3q")
"""Lever 6 of the v3 pre-registration: levers 3 and 5 together, a base model trained on captions that describe every
pose by its parts, with the benchmark poses rendered three times as often (``lab.train.V3Q_STAGE``)."""

MINI_V3R = replace(MINI_V3Q, name="mini-v3r", model_world=MINI_V3Q.name, exemplars_of=MINI_V3B.name,
                   signature_exemplars=MINI_V3B.signature_exemplars)
"""Lever 7 of the v3 pre-registration: levers 2 and 6 together, v3q's base model (nothing retrained) with lever 2's
exemplars (the signature on 6 of the 10, the same images as ``mini-v3b``)."""

MINI_V3S = replace(MINI_V3R, name="mini-v3s", signature_exemplars=0)
"""The control beside lever 7, not a gate world: v3q's base model and ``mini-v3r``'s exemplars with no signature on
any of them (the same people, builds and seeds; every exemplar on its own background, wearing at most one
non-signature attribute). It asks whether the shared context is what keeps P+ off the poses it does not learn."""

WORLDS = {w.name: w for w in (MINI_V1, MINI_V2, MINI_V3, MINI_V3B, MINI_V3C, MINI_V3P, MINI_V3Q, MINI_V3R, MINI_V3S)}


def world_named(name: str) -> WorldSpec:
    """The world a backbone, dataset, judge or suite name belongs to: ``mini``, ``mini-v1``, ``mini-v2``,
    each optionally with ``:FOLDER``.

    Raises:
        ConfigError: not a mini world name.
    """
    base = name.split(":", 1)[0]
    base = PLAIN_NAME_WORLD if base == PLAIN_NAME else base
    if base not in WORLDS:
        raise ConfigError(f"{name!r} names no mini world; known: {PLAIN_NAME} (= {PLAIN_NAME_WORLD}), "
                          f"{', '.join(WORLDS)}, each optionally as NAME:FOLDER")
    return WORLDS[base]


def world_option(value: str) -> WorldSpec:
    """The world of a ``--world`` value: ``v1``, ``v2`` or a full name (``mini-v2``).

    Raises:
        ConfigError: no such world.
    """
    name = value if value.startswith(PLAIN_NAME) else f"{PLAIN_NAME}-{value}"
    if name.split(":", 1)[0] not in WORLDS and name != PLAIN_NAME:
        raise ConfigError(f"--world {value}: no such mini world; known: "
                          f"{', '.join(w.removeprefix(PLAIN_NAME + '-') for w in WORLDS)}")
    return world_named(name)
