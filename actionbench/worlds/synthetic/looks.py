"""Looks: what each of the 23 subjects, and each exemplar-only person, looks like.

A ``Look`` is plain data: colours and a few style names that ``painter`` and ``heads`` turn
into shapes. To give a figure something new to wear, add a field (or a ``details`` name)
here and draw it in the painter part that owns that region of the body.
"""
from __future__ import annotations

from dataclasses import dataclass

from actionbench.raster import RGB


@dataclass(frozen=True)
class Look:
    """Appearance of one figure. Humans wear clothes; animals are fur with a species head."""

    id: str
    words: str  # how a caption describes it, e.g. "a man in a blue shirt"
    species: str = "human"  # "human" or monkey/cat/gorilla/tiger/dog/panda/bear/rabbit
    scale: float = 1.0  # body height relative to an adult
    build: float = 1.0  # limb and torso thickness
    head_scale: float = 1.0
    skin: RGB = (234, 192, 160)  # face and hands; for animals the fur
    hair: RGB | None = (90, 60, 35)
    hair_style: str = "short"  # short, long, bun, pigtails, bald, wild, bangs, none
    hat: str | None = None  # a key of heads.HATS: police, chef, fedora
    shirt: RGB = (60, 110, 200)
    sleeves: str = "long"  # long, short, or none (bare arms: wearables' sportswear)
    pants: RGB = (45, 55, 95)
    lower: str = "trousers"  # trousers, shorts, skirt, dress (shirt-coloured), robe
    legs: RGB | None = None  # bare legs / socks below shorts or skirt (default skin)
    shoes: RGB = (45, 35, 30)
    # tie, tie_stripes, shirt_front, stripes, badge, glove_r, glasses, beard, moustache,
    # neckerchief, lips, buttons, sparkles, socks
    details: tuple = ()
    accent: RGB = (200, 30, 40)  # tie / badge / neckerchief / white glove / shirt-stripe colour
    # animals
    belly: RGB | None = None
    muzzle: RGB | None = None
    ears: str | None = None  # pointed, long, round, side, floppy, small
    ear_color: RGB | None = None
    ear_inner: RGB | None = None
    tail: str | None = None  # a key of figure.TAIL_SHAPES: long, curl, short, puff
    stripes: RGB | None = None
    limbs: RGB | None = None  # limb fur colour when it differs (panda)
    patches: RGB | None = None  # eye patches (panda)


def _human(id, words, **kw) -> Look:
    return Look(id=id, words=words, **kw)


def _animal(id, words, species, fur, **kw) -> Look:
    """An animal: fur everywhere (``paws``, if given, colours hands and feet), no hair."""
    kw.setdefault("hair", None)
    kw.setdefault("hair_style", "none")
    return Look(id=id, words=words, species=species, skin=fur, shirt=fur, pants=fur, shoes=kw.pop("paws", fur),
                sleeves="long", lower="trousers", **kw)


_SKIN_LIGHT, _SKIN_MID, _SKIN_TAN, _SKIN_DARK = (240, 200, 170), (226, 180, 140), (196, 144, 104), (120, 78, 52)

SUBJECT_LOOKS: dict[str, Look] = {
    look.id: look
    for look in (
        _human("man", "a man in a blue shirt and dark jeans", skin=_SKIN_MID, hair=(85, 55, 30),
               shirt=(50, 100, 205), pants=(40, 48, 85)),
        _human("woman", "a woman with long brown hair in a red dress", skin=_SKIN_LIGHT, hair=(95, 55, 30),
               hair_style="long", shirt=(205, 40, 55), lower="dress", shoes=(120, 20, 30), details=("lips",)),
        _human("boy", "a boy in a green t-shirt and khaki shorts", scale=0.8, build=1.1, head_scale=1.15,
               skin=_SKIN_LIGHT, hair=(230, 190, 90), shirt=(60, 170, 70), sleeves="short", pants=(190, 160, 110),
               lower="shorts", shoes=(200, 60, 50)),
        _human("girl", "a girl with pigtails in a pink dress", scale=0.8, build=1.1, head_scale=1.15,
               skin=_SKIN_MID, hair=(110, 65, 35), hair_style="pigtails", shirt=(245, 135, 185), sleeves="short",
               lower="dress", shoes=(230, 230, 240)),
        _human("old_man", "an old bald man with glasses in a camel sweater", skin=(232, 190, 160),
               hair=(200, 200, 200), hair_style="bald", shirt=(190, 150, 95), pants=(95, 80, 70),
               details=("glasses",)),
        _human("old_woman", "an old woman with a white bun in a lavender dress", skin=(236, 198, 176),
               hair=(235, 235, 235), hair_style="bun", shirt=(165, 135, 205), lower="dress", legs=(210, 190, 180),
               details=("glasses",)),
        _human("police_officer", "a police officer in a navy uniform and cap", skin=_SKIN_TAN, hair=(40, 30, 25),
               hat="police", shirt=(30, 45, 105), pants=(25, 32, 70), shoes=(15, 15, 15), accent=(240, 200, 40),
               details=("badge", "tie")),
        _human("chef", "a chef in a white jacket and a tall white hat", skin=_SKIN_LIGHT, hair=(70, 50, 35),
               hat="chef", shirt=(248, 248, 248), pants=(70, 70, 75), shoes=(20, 20, 20), accent=(220, 40, 40),
               details=("neckerchief", "buttons")),
        _human("michael_jackson", "a man in a black fedora, black jacket and white glove", skin=(205, 160, 130),
               hair=(20, 15, 15), hair_style="long", hat="fedora", shirt=(22, 22, 26), pants=(22, 22, 26),
               legs=(250, 250, 250), shoes=(12, 12, 12), accent=(250, 250, 250), details=("shirt_front", "glove_r", "socks")),
        _human("david_beckham", "a blond man in a red football shirt and white shorts", skin=_SKIN_MID,
               hair=(225, 195, 120), shirt=(215, 25, 35), sleeves="short", pants=(250, 250, 250), lower="shorts",
               legs=(215, 25, 35), shoes=(20, 20, 20), details=("socks",)),
        _human("barack_obama", "a man in a blue-grey suit with a red tie", skin=_SKIN_DARK, hair=(50, 45, 45),
               shirt=(72, 88, 118), pants=(60, 72, 98), shoes=(10, 10, 10), accent=(205, 35, 45),
               details=("shirt_front", "tie")),
        _human("taylor_swift", "a blonde woman with bangs in a sparkly silver-blue dress", skin=_SKIN_LIGHT,
               hair=(240, 215, 140), hair_style="bangs", shirt=(160, 200, 235), lower="dress", shoes=(200, 30, 50),
               details=("lips", "sparkles")),
        _human("albert_einstein", "an old man with wild white hair and a moustache in a grey suit",
               skin=(236, 196, 170), hair=(245, 245, 245), hair_style="wild", shirt=(120, 120, 130),
               pants=(105, 105, 112), details=("moustache",)),
        _human("lionel_messi", "a bearded man in a striped sky-blue football shirt and black shorts",
               skin=_SKIN_MID, hair=(95, 60, 35), shirt=(120, 190, 235), sleeves="short", pants=(25, 25, 30),
               lower="shorts", legs=(250, 250, 250), shoes=(230, 120, 30), accent=(250, 250, 250),
               details=("stripes", "beard", "socks")),
        _human("emma_watson", "a woman with long brown hair in a black robe and striped tie", skin=_SKIN_LIGHT,
               hair=(120, 80, 45), hair_style="long", shirt=(30, 30, 36), lower="robe", pants=(40, 40, 45),
               shoes=(15, 15, 15), accent=(170, 25, 35), details=("shirt_front", "tie", "tie_stripes")),
        _animal("monkey", "a brown monkey", "monkey", (145, 92, 50), build=0.9, scale=0.9, head_scale=1.05,
                muzzle=(236, 198, 160), belly=(215, 170, 125), ears="side", ear_color=(145, 92, 50),
                ear_inner=(236, 198, 160), tail="curl"),
        _animal("cat", "a grey cat", "cat", (150, 152, 165), scale=0.86, head_scale=1.05, muzzle=(245, 245, 245),
                belly=(245, 245, 245), ears="pointed", ear_color=(150, 152, 165), ear_inner=(245, 170, 185),
                tail="long", paws=(245, 245, 245)),
        _animal("gorilla", "a black gorilla", "gorilla", (48, 48, 54), build=1.4, head_scale=1.0,
                muzzle=(100, 95, 95), belly=(90, 88, 92), ears="small", ear_color=(48, 48, 54),
                ear_inner=(100, 95, 95)),
        _animal("tiger", "an orange tiger with black stripes", "tiger", (235, 130, 35), build=1.1,
                muzzle=(250, 245, 235), belly=(250, 245, 235), ears="round", ear_color=(235, 130, 35),
                ear_inner=(250, 245, 235), tail="long", stripes=(25, 20, 20)),
        _animal("dog", "a golden dog with floppy ears", "dog", (215, 165, 85), muzzle=(248, 232, 200),
                belly=(248, 232, 200), ears="floppy", ear_color=(150, 95, 45), tail="short"),
        _animal("panda", "a black and white panda", "panda", (246, 246, 246), build=1.25, limbs=(30, 30, 34),
                ears="round", ear_color=(30, 30, 34), patches=(30, 30, 34), tail="puff", paws=(30, 30, 34)),
        _animal("bear", "a brown bear", "bear", (112, 72, 42), build=1.3, muzzle=(205, 165, 115),
                belly=(150, 105, 65), ears="round", ear_color=(112, 72, 42), ear_inner=(205, 165, 115), tail="puff"),
        _animal("rabbit", "a white rabbit with long ears", "rabbit", (244, 244, 240), scale=0.84, head_scale=1.05,
                muzzle=(255, 255, 255), ears="long", ear_color=(244, 244, 240), ear_inner=(250, 170, 190),
                tail="puff", paws=(230, 225, 220)),
    )
}

# Exemplar-only people: never one of the 23 evaluation subjects, so copying appearance does not pay.
EXEMPLAR_LOOKS: dict[str, Look] = {
    look.id: look
    for look in (
        _human("exemplar_person_0", "a man in a red t-shirt and blue jeans", skin=_SKIN_MID, hair=(30, 25, 20),
               shirt=(220, 50, 40), sleeves="short", pants=(60, 90, 150)),
        _human("exemplar_person_1", "a woman in a yellow dress", skin=_SKIN_TAN, hair=(25, 20, 18), hair_style="long",
               shirt=(245, 205, 40), lower="dress", shoes=(150, 90, 40)),
        _human("exemplar_person_2", "a person in a green hoodie and black trousers", skin=_SKIN_LIGHT,
               hair=(120, 80, 40), shirt=(40, 140, 90), pants=(30, 30, 35)),
        _human("exemplar_person_3", "a woman in an orange top and white trousers", skin=_SKIN_DARK, hair=(20, 15, 15),
               hair_style="bun", shirt=(245, 140, 40), pants=(240, 240, 235), shoes=(180, 60, 40)),
        _human("exemplar_person_4", "a man in a purple sweater and grey trousers", skin=_SKIN_LIGHT,
               hair=(200, 160, 80), shirt=(120, 60, 160), pants=(130, 130, 135)),
        _human("exemplar_person_5", "a person in a teal shirt and brown shorts", skin=_SKIN_TAN, hair=(45, 30, 20),
               shirt=(30, 160, 160), sleeves="short", pants=(120, 80, 45), lower="shorts", shoes=(240, 240, 240)),
        _human("exemplar_person_6", "a woman in a white blouse and a blue skirt", skin=_SKIN_LIGHT,
               hair=(180, 70, 30), hair_style="long", shirt=(245, 245, 245), pants=(40, 80, 190), lower="skirt"),
        _human("exemplar_person_7", "a man in a black t-shirt and khaki trousers", skin=_SKIN_DARK, hair=(15, 12, 12),
               shirt=(28, 28, 30), sleeves="short", pants=(185, 165, 120)),
        _human("exemplar_person_8", "a woman in a pink hoodie and blue jeans", skin=_SKIN_MID, hair=(230, 200, 120),
               hair_style="long", shirt=(240, 120, 170), pants=(55, 85, 150), shoes=(250, 250, 250)),
        _human("exemplar_person_9", "a man in a grey tracksuit", skin=_SKIN_MID, hair=(60, 40, 25),
               shirt=(150, 150, 155), pants=(140, 140, 145), shoes=(40, 40, 120)),
    )
}

LOOKS: dict[str, Look] = {**SUBJECT_LOOKS, **EXEMPLAR_LOOKS}
