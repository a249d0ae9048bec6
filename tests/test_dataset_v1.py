"""ActionBench v1: manifest, import/download, verify and loading, on the real upstream files (offline)."""
from __future__ import annotations

import hashlib
import json
import shutil
import urllib.error
import zipfile
from pathlib import Path

import pytest

import actionbench
from actionbench import download as dl
from actionbench.dataset import Protocol
from actionbench.manifest import default_data_root, read_manifest
from actionbench.errors import DatasetError, IntegrityError
from actionbench.io import TMP_MARKER, TMP_PREFIX

UPSTREAM = Path(__file__).resolve().parents[1].parent / "shared" / "upstream" / "ActionBench"
CHECKSUMS = UPSTREAM.parent / "ActionBench.sha256"
COMMIT = "42344c8cf4794465ebf15a0f482ea1447a198453"
ACTIONS = ["cheer", "gesture", "handstand", "meditate", "pray", "salute", "sit", "squat"]
N_FILES = 170  # 8 actions x (10 jpg + 10 txt + text.json) + README + LICENSE

pytestmark = pytest.mark.skipif(
    not UPSTREAM.is_dir(),
    reason=f"upstream ActionBench copy not found at {UPSTREAM} (tests read the real files from ../shared/upstream)",
)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ACTIONBENCH_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("ACTIONBENCH_NO_PROGRESS", "1")
    monkeypatch.setattr(dl, "RETRY_DELAY_S", 0.0)


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[Path, dl.DownloadReport]:
    root = tmp_path_factory.mktemp("imported") / "actionbench-v1"
    return root, dl.download("v1", root=root, source=UPSTREAM, progress=False)


@pytest.fixture
def root_copy(imported, tmp_path) -> Path:
    """A private copy of a complete data root that a test may damage."""
    return Path(shutil.copytree(imported[0], tmp_path / "root"))


def _temporaries(root: Path) -> list[Path]:
    return list(root.rglob(f"{TMP_MARKER}*")) if root.exists() else []


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- manifest


def test_manifest_lists_every_upstream_file_with_matching_hashes():
    manifest, digest = read_manifest("v1")
    assert manifest["name"] == "actionbench" and manifest["version"] == "v1"
    assert manifest["upstream"]["repository"] == "bighuang624/ActionBench"
    assert manifest["upstream"]["commit"] == COMMIT
    assert "CC BY-NC-ND 4.0" in manifest["license"] and "2311.15841" in manifest["citation"]
    assert len(digest) == 64
    files = {f["path"]: f for f in manifest["files"]}
    on_disk = {p.relative_to(UPSTREAM).as_posix() for p in UPSTREAM.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {".gitignore", ".DS_Store"}
    assert len(files) == N_FILES
    for path, entry in files.items():
        data = (UPSTREAM / path).read_bytes()
        assert entry["size"] == len(data), path
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), path
    if CHECKSUMS.is_file():
        for line in CHECKSUMS.read_text().splitlines():
            digest_, name = line.split(maxsplit=1)
            rel = name.split("/", 1)[1]
            if rel in files:
                assert files[rel]["sha256"] == digest_, rel


def test_manifest_protocol_and_templates_come_from_upstream():
    manifest, _ = read_manifest("v1")
    protocol = manifest["protocol"]
    assert protocol["images_per_pair"] == 2 and protocol["base_seed"] == 0
    assert protocol["seed_rule"] == Protocol.seed_rule
    assert protocol["images_per_method"] == 368
    assert [a["id"] for a in manifest["actions"]] == ACTIONS
    for action in manifest["actions"]:
        text = json.loads((UPSTREAM / action["id"] / "text.json").read_text())
        for ex in action["exemplars"]:
            assert [ex["template"]] == text[Path(ex["image"]).name]


# --------------------------------------------------------------------------- import, verify, load


def test_import_from_folder_then_verify_and_load(imported):
    root, report = imported
    assert (report.total, report.fetched, report.skipped) == (N_FILES, N_FILES, 0)
    assert "170 fetched" in str(report)
    assert _files(root) == {f["path"] for f in read_manifest("v1")[0]["files"]}
    checked = dl.verify("v1", root=root, progress=False)
    assert checked.files == N_FILES and "match the manifest" in str(checked)

    ds = actionbench.load_dataset("v1", root=root, verify=True)
    assert [a.id for a in ds.actions] == ACTIONS
    assert all(len(a.exemplars) == 10 for a in ds.actions)
    assert all(ex.template.count("{}") == 1 and ex.path.is_file() for a in ds.actions for ex in a.exemplars)
    assert ds.action("cheer").captions()[0] == "Excited bearded man cheering with both arms raised over pink background."
    assert ds.action("sit").exemplars[2].image().mode == "RGB"
    assert len(ds.subjects) == 23
    categories = [s.category for s in ds.subjects]
    assert (categories.count("human"), categories.count("personality"), categories.count("animal")) == (8, 7, 8)
    assert ds.subject("police_officer").name == "a police officer"
    assert ds.protocol.prompt(ds.subject("panda"), ds.action("salute").phrase) == "a panda giving a military salute"


def test_units_are_368_with_unique_ids_and_stable_seeds(imported):
    root, _ = imported
    ds = actionbench.load_dataset("v1", root=root)
    units = ds.units()
    assert len(units) == 368
    assert len({u.id for u in units}) == 368
    again = actionbench.load_dataset("v1", root=root).units()
    assert [(u.id, u.seed) for u in units] == [(u.id, u.seed) for u in again]
    first = units[0]
    assert first.id == "cheer/man/0"
    assert first.seed == int(hashlib.sha256(b"cheer|man|0").hexdigest()[:8], 16) % 2**31
    assert all(0 <= u.seed < 2**31 for u in units)


def test_to_hf_has_80_rows_and_an_image_feature(imported):
    import datasets

    hf = actionbench.load_dataset("v1", root=imported[0]).to_hf()
    assert isinstance(hf, datasets.Dataset) and hf.num_rows == 80
    assert isinstance(hf.features["image"], datasets.Image)
    row = hf[0]
    assert row["action"] == "cheer" and row["index"] == 1 and row["image"].size[0] > 0


def test_second_download_skips_valid_files(root_copy):
    report = dl.download("v1", root=root_copy, source=UPSTREAM, progress=False)
    assert (report.fetched, report.skipped) == (0, N_FILES)


# --------------------------------------------------------------------------- damaged roots


def test_flipped_byte_is_named_by_verify_and_replaced_by_download(root_copy):
    victim = root_copy / "cheer" / "05.jpg"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    expected = {f["path"]: f["sha256"] for f in read_manifest("v1")[0]["files"]}["cheer/05.jpg"]

    with pytest.raises(IntegrityError) as info:
        dl.verify("v1", root=root_copy, progress=False)
    message = str(info.value)
    assert "cheer/05.jpg" in message and expected in message and hashlib.sha256(data).hexdigest() in message
    assert "actionbench download" in message and str(root_copy) in message

    report = dl.download("v1", root=root_copy, source=UPSTREAM, progress=False)
    assert (report.fetched, report.skipped) == (1, N_FILES - 1)
    dl.verify("v1", root=root_copy, progress=False)


def test_truncated_and_missing_files_are_detected_and_refetched(root_copy):
    truncated = root_copy / "sit" / "03.jpg"
    truncated.write_bytes(truncated.read_bytes()[:100])
    (root_copy / "pray" / "text.json").unlink()

    with pytest.raises(IntegrityError) as info:
        actionbench.load_dataset("v1", root=root_copy, verify=True)
    message = str(info.value)
    assert "sit/03.jpg: sha256" in message and "(truncated)" in message and "pray/text.json: missing" in message

    report = dl.download("v1", root=root_copy, source=UPSTREAM, progress=False)
    assert report.fetched == 2
    dl.verify("v1", root=root_copy, progress=False)


def test_verify_on_empty_root_says_how_to_download(tmp_path):
    with pytest.raises(DatasetError, match="actionbench download"):
        dl.verify("v1", root=tmp_path / "nothing", progress=False)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DatasetError, match="is a file"):
        dl.download("v1", root=tmp_path / "a-file", source=UPSTREAM, progress=False)


def test_interrupted_import_resumes_and_fetches_only_the_rest(tmp_path, monkeypatch):
    root = tmp_path / "root"
    real_fetch = dl._FolderSource.fetch
    calls = {"n": 0}

    def dying_fetch(self, entry, dest):
        calls["n"] += 1
        if calls["n"] == 60:
            dest.write_bytes(b"half a file")
            raise KeyboardInterrupt  # what a Ctrl-C mid-copy looks like
        real_fetch(self, entry, dest)

    monkeypatch.setattr(dl._FolderSource, "fetch", dying_fetch)
    with pytest.raises(KeyboardInterrupt):
        dl.download("v1", root=root, source=UPSTREAM, progress=False)
    assert len(_files(root)) == 59 and not _temporaries(root)

    # a process killed hard leaves its temporary behind: the next run removes it
    (root / "squat").mkdir(exist_ok=True)
    (root / "squat" / f"{TMP_PREFIX}deadbeef-01.jpg").write_bytes(b"partial")
    monkeypatch.setattr(dl._FolderSource, "fetch", real_fetch)
    report = dl.download("v1", root=root, source=UPSTREAM, progress=False)
    assert (report.fetched, report.skipped, report.stale_removed) == (N_FILES - 59, 59, 1)
    assert not _temporaries(root)
    dl.verify("v1", root=root, progress=False)


# --------------------------------------------------------------------------- other sources


def _zip_upstream(path: Path, top: str, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(top, b"")  # directory entry, as GitHub archives have
        for file in sorted(UPSTREAM.rglob("*")):
            if file.is_file():
                archive.write(file, top + file.relative_to(UPSTREAM).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def test_zip_with_top_folder_imports(tmp_path):
    archive = _zip_upstream(tmp_path / "ActionBench.zip", f"ActionBench-{COMMIT}/")
    root = tmp_path / "root"
    report = dl.download("v1", root=root, source=archive, progress=False)
    assert (report.fetched, report.skipped) == (N_FILES, 0)
    assert ".gitignore" not in _files(root)
    dl.verify("v1", root=root, progress=False)


@pytest.mark.parametrize("evil", ["../evil", "ActionBench/../../evil", "/tmp/actionbench-evil", "C:\\evil"])
def test_zip_slip_entries_are_refused_before_anything_is_written(tmp_path, evil):
    archive = _zip_upstream(tmp_path / "evil.zip", "ActionBench/", {evil: b"pwned"})
    root = tmp_path / "target" / "root"
    with pytest.raises(DatasetError) as info:
        dl.download("v1", root=root, source=archive, progress=False)
    assert repr(evil) in str(info.value) and "outside the target" in str(info.value)
    assert not root.exists() and not (tmp_path / "target").exists() and not (tmp_path / "evil").exists()


def test_source_missing_a_file_names_it_and_writes_nothing(tmp_path):
    source = Path(shutil.copytree(UPSTREAM, tmp_path / "clone"))
    (source / "squat" / "07.jpg").unlink()
    root = tmp_path / "root"
    with pytest.raises(DatasetError, match="squat/07.jpg"):
        dl.download("v1", root=root, source=source, progress=False)
    assert not root.exists()
    with pytest.raises(DatasetError, match="does not exist"):
        dl.download("v1", root=root, source=tmp_path / "no-such-folder", progress=False)


def test_modified_source_file_is_refused_and_the_rest_imported(tmp_path):
    source = Path(shutil.copytree(UPSTREAM, tmp_path / "clone"))
    (source / "meditate" / "02.txt").write_text("edited caption")
    root = tmp_path / "root"
    with pytest.raises(IntegrityError) as info:
        dl.download("v1", root=root, source=source, progress=False)
    assert "meditate/02.txt" in str(info.value) and "not an unmodified copy" in str(info.value)
    assert not (root / "meditate" / "02.txt").exists() and len(_files(root)) == N_FILES - 1


def test_unknown_version_lists_known_versions(tmp_path):
    for call in (dl.download, dl.verify):
        with pytest.raises(DatasetError, match=r"unknown dataset version 'v9'.*known versions: v1"):
            call("v9", root=tmp_path)
    with pytest.raises(DatasetError, match="no download"):
        dl.download("synthetic", root=tmp_path)
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- URL download (network replaced)


def _fake_fetch(corrupt: str | None = None, calls: list[str] | None = None):
    prefix = f"https://raw.githubusercontent.com/bighuang624/ActionBench/{COMMIT}/"

    def fetch(url: str, dest: Path, timeout: float, max_bytes: int) -> None:
        assert url.startswith(prefix), url
        path = url[len(prefix):]
        if calls is not None:
            calls.append(path)
        data = (UPSTREAM / path).read_bytes()
        if path == corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        dest.write_bytes(data[: max_bytes + 1])

    return fetch


def test_url_download_fetches_every_file_from_the_pinned_commit(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(dl, "_fetch_url", _fake_fetch(calls=calls))
    report = dl.download("v1", progress=False)  # default root under $ACTIONBENCH_HOME
    assert report.fetched == N_FILES and len(calls) == N_FILES
    assert report.root == default_data_root("v1")
    assert COMMIT[:10] in str(report)
    dl.verify("v1", progress=False)
    assert len(actionbench.load_dataset("v1").units()) == 368


def test_url_corrupted_response_raises_and_leaves_no_file(tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setattr(dl, "_fetch_url", _fake_fetch(corrupt="handstand/04.jpg"))
    with pytest.raises(IntegrityError) as info:
        dl.download("v1", root=root, progress=False)
    message = str(info.value)
    expected = {f["path"]: f["sha256"] for f in read_manifest("v1")[0]["files"]}["handstand/04.jpg"]
    data = (UPSTREAM / "handstand" / "04.jpg").read_bytes()
    actual = hashlib.sha256(data[:-1] + bytes([data[-1] ^ 1])).hexdigest()
    assert "handstand/04.jpg" in message and "deleted" in message
    assert f"sha256 {actual}" in message and f"expected sha256 {expected}" in message
    assert "actionbench download" in message
    assert not (root / "handstand" / "04.jpg").exists() and not _temporaries(root)
    assert len(_files(root)) == N_FILES - 1

    calls: list[str] = []
    monkeypatch.setattr(dl, "_fetch_url", _fake_fetch(calls=calls))
    report = dl.download("v1", root=root, progress=False)
    assert calls == ["handstand/04.jpg"] and (report.fetched, report.skipped) == (1, N_FILES - 1)


def test_url_download_retries_once_then_names_the_file(tmp_path, monkeypatch):
    good = _fake_fetch()
    failures = {"n": 0}

    def flaky(url, dest, timeout, max_bytes):
        if url.endswith("cheer/01.jpg") and failures["n"] == 0:
            failures["n"] += 1
            raise urllib.error.URLError("connection reset")
        good(url, dest, timeout, max_bytes)

    monkeypatch.setattr(dl, "_fetch_url", flaky)
    assert dl.download("v1", root=tmp_path / "a", progress=False).fetched == N_FILES

    def down(url, dest, timeout, max_bytes):
        raise urllib.error.URLError("name resolution failed")

    monkeypatch.setattr(dl, "_fetch_url", down)
    with pytest.raises(DatasetError, match=r"could not download LICENSE-CC-BY-NC-ND-4.0.md .*attempt 2.*--from"):
        dl.download("v1", root=tmp_path / "b", progress=False)
    assert not _temporaries(tmp_path / "b")
