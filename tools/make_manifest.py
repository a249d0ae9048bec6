"""Generate ``actionbench/data/actionbench-v1/manifest.json`` from a pinned copy of upstream ActionBench.

Usage (from the repository root)::

    python tools/make_manifest.py [--upstream ../shared/upstream/ActionBench] \
        [--checksums ../shared/upstream/ActionBench.sha256] [--out actionbench/data/actionbench-v1/manifest.json]

The manifest records, for every upstream file, its path, size and SHA-256 (no file
content is copied into this repository), the caption templates from each action's
``text.json``, the 23 evaluation subjects and the generation protocol. When a
``sha256sum``-style checksum list is given, every file it lists must match, so a
locally modified copy cannot slip into the manifest.

v1 is frozen: rerunning this script on the same upstream commit must give the same
bytes; any change to images, captions, subjects or protocol is a new version.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from actionbench.dataset import Protocol  # noqa: E402
from actionbench.manifest import MANIFEST_SCHEMA_VERSION  # noqa: E402
from actionbench.io import atomic_write_text  # noqa: E402

REPOSITORY = "bighuang624/ActionBench"
COMMIT = "42344c8cf4794465ebf15a0f482ea1447a198453"
SKIP_NAMES = {".gitignore", ".DS_Store"}
TOP_LEVEL_FILES = ("README.md", "LICENSE-CC-BY-NC-ND-4.0.md")
EXEMPLARS_PER_ACTION = 10

LICENSE = "CC BY-NC-ND 4.0 (non-commercial, attribution, no derivatives)"
CITATION = """@InProceedings{Huang_2024_CVPR,
    author    = {Huang, Siteng and Gong, Biao and Feng, Yutong and Chen, Xi and Fu, Yuqian and Liu, Yu and Wang, Donglin},
    title     = {Learning Disentangled Identifiers for Action-Customized Text-to-Image Generation},
    booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
    month     = {June},
    year      = {2024},
    pages     = {7797-7806},
    eprint    = {2311.15841},
    archivePrefix = {arXiv}
}"""

# Plain-language verb phrases that fill "{}" in the caption templates.
ACTIONS: dict[str, str] = {
    "cheer": "cheering with both arms raised",
    "gesture": "pointing the index finger up",
    "handstand": "doing a handstand",
    "meditate": "meditating in the lotus position",
    "pray": "praying with clasped hands",
    "salute": "giving a military salute",
    "sit": "sitting",
    "squat": "squatting",
}

SUBJECTS: list[tuple[str, str, str]] = [
    ("man", "a man", "human"),
    ("woman", "a woman", "human"),
    ("boy", "a boy", "human"),
    ("girl", "a girl", "human"),
    ("old_man", "an old man", "human"),
    ("old_woman", "an old woman", "human"),
    ("police_officer", "a police officer", "human"),
    ("chef", "a chef", "human"),
    ("michael_jackson", "Michael Jackson", "personality"),
    ("david_beckham", "David Beckham", "personality"),
    ("barack_obama", "Barack Obama", "personality"),
    ("taylor_swift", "Taylor Swift", "personality"),
    ("albert_einstein", "Albert Einstein", "personality"),
    ("lionel_messi", "Lionel Messi", "personality"),
    ("emma_watson", "Emma Watson", "personality"),
    ("monkey", "a monkey", "animal"),
    ("cat", "a cat", "animal"),
    ("gorilla", "a gorilla", "animal"),
    ("tiger", "a tiger", "animal"),
    ("dog", "a dog", "animal"),
    ("panda", "a panda", "animal"),
    ("bear", "a bear", "animal"),
    ("rabbit", "a rabbit", "animal"),
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def list_files(upstream: Path) -> list[str]:
    """Upstream files that belong to the dataset, as sorted POSIX paths relative to ``upstream``."""
    paths = list(TOP_LEVEL_FILES)
    for action in ACTIONS:
        folder = upstream / action
        found = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in SKIP_NAMES)
        expected = sorted(
            [f"{i:02d}.jpg" for i in range(1, EXEMPLARS_PER_ACTION + 1)]
            + [f"{i:02d}.txt" for i in range(1, EXEMPLARS_PER_ACTION + 1)]
            + ["text.json"]
        )
        if found != expected:
            raise SystemExit(f"{folder}: expected files {expected}, found {found}")
        paths += [f"{action}/{name}" for name in found]
    for path in paths:
        if not (upstream / path).is_file():
            raise SystemExit(f"missing upstream file: {upstream / path}")
    return sorted(paths)


def read_checksums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum`` list whose paths start with ``ActionBench/``."""
    sums: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        name = name.lstrip("*").strip()
        sums[name.split("/", 1)[1] if "/" in name else name] = digest.lower()
    return sums


def build_manifest(upstream: Path, checksums: dict[str, str] | None) -> dict:
    """The v1 manifest as a dict; exits with a message when the upstream copy looks modified."""
    paths = list_files(upstream)
    files = [{"path": p, "size": (upstream / p).stat().st_size, "sha256": _sha256(upstream / p)} for p in paths]
    if checksums is not None:
        unchecked = []
        for entry in files:
            expected = checksums.get(entry["path"])
            if expected is None:
                unchecked.append(entry["path"])
            elif expected != entry["sha256"]:
                raise SystemExit(
                    f"{entry['path']}: sha256 {entry['sha256']} differs from the checksum list ({expected}); "
                    "the upstream copy is modified"
                )
        if unchecked:
            print(f"note: not in the checksum list, hashed from the copy only: {', '.join(unchecked)}", file=sys.stderr)

    actions = []
    for action_id, phrase in ACTIONS.items():
        text = json.loads((upstream / action_id / "text.json").read_text(encoding="utf-8"))
        exemplars = []
        for index in range(1, EXEMPLARS_PER_ACTION + 1):
            image = f"{index:02d}.jpg"
            templates = text.get(image)
            if not templates or len(templates) != 1 or templates[0].count("{}") != 1:
                raise SystemExit(f"{action_id}/text.json: expected one template with one '{{}}' for {image}, got {templates!r}")
            exemplars.append({"index": index, "image": f"{action_id}/{image}", "template": templates[0]})
        actions.append({"id": action_id, "phrase": phrase, "exemplars": exemplars})

    protocol = Protocol()
    images_per_method = len(ACTIONS) * len(SUBJECTS) * protocol.images_per_pair
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "name": "actionbench",
        "version": "v1",
        "license": LICENSE,
        "citation": CITATION,
        "upstream": {
            "repository": REPOSITORY,
            "commit": COMMIT,
            "url_pattern": "https://raw.githubusercontent.com/{repository}/{commit}/{path}",
            "archive_url": f"https://github.com/{REPOSITORY}/archive/{{commit}}.zip",
        },
        "protocol": {
            "images_per_pair": protocol.images_per_pair,
            "base_seed": protocol.base_seed,
            "prompt_template": protocol.prompt_template,
            "seed_rule": protocol.seed_rule,
            "images_per_method": images_per_method,
        },
        "actions": actions,
        "subjects": [{"id": i, "name": n, "category": c} for i, n, c in SUBJECTS],
        "files": files,
    }


def main(argv: list[str] | None = None) -> int:
    shared = REPO_ROOT.parent / "shared" / "upstream"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", type=Path, default=shared / "ActionBench")
    parser.add_argument("--checksums", type=Path, default=shared / "ActionBench.sha256")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "actionbench" / "data" / "actionbench-v1" / "manifest.json")
    args = parser.parse_args(argv)
    checksums = read_checksums(args.checksums) if args.checksums and args.checksums.is_file() else None
    if checksums is None:
        print(f"warning: no checksum list at {args.checksums}; files are not cross-checked", file=sys.stderr)
    manifest = build_manifest(args.upstream, checksums)
    atomic_write_text(args.out, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}: {len(manifest['files'])} files, {len(manifest['actions'])} actions, "
          f"{len(manifest['subjects'])} subjects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
