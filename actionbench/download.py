"""Fetch, import and verify the ActionBench image files listed in a dataset manifest.

Every file goes to a temporary name inside the target folder and is renamed into
place only after its size and SHA-256 match the manifest, so a killed run never
leaves a half-written file under its real name. Files already present and valid are
skipped, which makes ``download`` resumable and also the way to repair a folder:
invalid files are fetched again and replaced.

Sources:

* the pinned upstream commit, file by file over HTTPS (default);
* a local clone or folder (``source=PATH``), either the ActionBench folder itself or
  a folder with exactly one such folder inside;
* a zip archive (``source=FILE.zip``), for example GitHub's
  ``ActionBench-<commit>.zip`` whose entries sit under a top folder. Entries that
  would land outside the target (``../``, absolute paths) make the whole archive
  refused before anything is written.
"""
from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol as TypingProtocol

from . import __version__
from .manifest import SYNTHETIC, default_data_root, read_manifest
from .errors import DatasetError, IntegrityError, SchemaError
from .hashing import sha256_file
from .io import atomic_path, remove_stale_temporaries
from .report import progress as progress_bar

__all__ = ["DownloadReport", "VerifyReport", "ManifestFile", "download", "verify", "manifest_files"]

TIMEOUT_S = 60.0
RETRY_DELAY_S = 2.0
CHUNK = 1 << 16
MAX_LISTED = 5  # files named one by one in an error message


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class DownloadReport:
    """What ``download`` did: ``fetched`` files were written, ``skipped`` were already valid."""

    version: str
    root: Path
    source: str
    total: int
    fetched: int
    skipped: int
    bytes_fetched: int = 0
    stale_removed: int = 0

    def __str__(self) -> str:
        text = (
            f"ActionBench {self.version}: {self.total} files in {self.root} "
            f"({self.fetched} fetched, {self.bytes_fetched / 1e6:.1f} MB, {self.skipped} already valid) "
            f"from {self.source}"
        )
        if self.stale_removed:
            text += f"; removed {self.stale_removed} stale temporary file(s) from an interrupted run"
        return text


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify`` checked; it only returns when every file matched."""

    version: str
    root: Path
    files: int
    bytes: int

    def __str__(self) -> str:
        return f"ActionBench {self.version}: all {self.files} files in {self.root} match the manifest ({self.bytes / 1e6:.1f} MB)"


@dataclass(frozen=True)
class ManifestFile:
    """One file of the dataset as the manifest lists it."""

    path: str  # POSIX path relative to the data root, e.g. "cheer/01.jpg"
    size: int
    sha256: str


# --------------------------------------------------------------------------- manifest helpers


def _unsafe_reason(name: str) -> str | None:
    """Why ``name`` (a relative POSIX path from a manifest or an archive) would escape its folder, or None."""
    normalized = name.replace("\\", "/")
    if "\x00" in normalized:
        return "contains a NUL byte"
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return "is an absolute path"
    if ".." in normalized.split("/"):
        return "contains a '..' component"
    return None


def manifest_files(manifest: dict) -> list[ManifestFile]:
    """The manifest's ``files`` list as typed entries, checked for shape and safe paths."""
    entries = manifest.get("files")
    if not isinstance(entries, list) or not entries:
        raise SchemaError("dataset manifest has no 'files' list; restore the manifest (reinstall actionbench)")
    files = []
    for raw in entries:
        try:
            entry = ManifestFile(str(raw["path"]), int(raw["size"]), str(raw["sha256"]).lower())
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"dataset manifest has a malformed file entry {raw!r} ({exc}); restore the manifest") from None
        reason = _unsafe_reason(entry.path)
        if reason or not entry.path or entry.path.endswith("/"):
            raise SchemaError(f"dataset manifest file path {entry.path!r} {reason or 'is not a file path'}; restore the manifest")
        files.append(entry)
    return files


def _load(version: str) -> tuple[dict, list[ManifestFile]]:
    if version == SYNTHETIC:
        raise DatasetError(
            f"the '{SYNTHETIC}' dataset is rendered locally and needs no download; "
            "use load_dataset('synthetic') (download and verify take a version such as 'v1')"
        )
    manifest, _ = read_manifest(version)  # unknown version -> DatasetError listing known versions
    return manifest, manifest_files(manifest)


def _check(path: Path, entry: ManifestFile) -> str | None:
    """None when ``path`` matches ``entry``, else a description of the mismatch."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    actual = sha256_file(path)
    if size == entry.size and actual == entry.sha256:
        return None
    note = " (truncated)" if size < entry.size else ""
    return f"sha256 {actual} ({size} bytes{note}), expected sha256 {entry.sha256} ({entry.size} bytes)"


def _listing(problems: list[tuple[str, str]]) -> str:
    shown = "; ".join(f"{path}: {what}" for path, what in problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        shown += f"; and {len(problems) - MAX_LISTED} more"
    return shown


def _download_command(version: str, root: Path, source: str | None = None) -> str:
    command = f"actionbench download --version {version}"
    if root != default_data_root(version):
        command += f" --root {root}"
    if source is not None:
        command += f" --from {source}"
    return f"`{command}`"


# --------------------------------------------------------------------------- sources


class _Source(TypingProtocol):
    description: str

    def check(self, files: list[ManifestFile]) -> None:
        """Raise DatasetError before anything is written when the source cannot provide ``files``."""

    def fetch(self, entry: ManifestFile, dest: Path) -> None:
        """Write the bytes of ``entry`` to ``dest`` (at most ``entry.size + 1`` bytes)."""

    def close(self) -> None: ...


def _copy_capped(reader: BinaryIO, dest: Path, limit: int) -> None:
    """Copy at most ``limit + 1`` bytes: enough to notice a file that is too long, never a bomb."""
    remaining = limit + 1
    with open(dest, "wb") as out:
        while remaining > 0:
            chunk = reader.read(min(CHUNK, remaining))
            if not chunk:
                break
            out.write(chunk)
            remaining -= len(chunk)


def _fetch_url(url: str, dest: Path, timeout: float, max_bytes: int) -> None:
    """HTTP GET ``url`` into ``dest``; the single network call (tests replace it)."""
    request = urllib.request.Request(url, headers={"User-Agent": f"actionbench/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https URL from the manifest)
        _copy_capped(response, dest, max_bytes)


class _UrlSource:
    """Files from the pinned upstream commit, one HTTPS request each, retried once."""

    def __init__(self, manifest: dict, version: str, root: Path, timeout: float) -> None:
        upstream = manifest["upstream"]
        self.repository = upstream["repository"]
        self.commit = upstream["commit"]
        self.pattern = upstream["url_pattern"]
        self.archive_url = upstream.get("archive_url", "").format(commit=self.commit, repository=self.repository)
        self.version, self.root, self.timeout = version, root, timeout
        self.description = f"github.com/{self.repository}@{self.commit[:10]}"

    def url(self, path: str) -> str:
        return self.pattern.format(repository=self.repository, commit=self.commit, path=urllib.parse.quote(path))

    def check(self, files: list[ManifestFile]) -> None:
        return None

    def fetch(self, entry: ManifestFile, dest: Path) -> None:
        url = self.url(entry.path)
        for attempt in (1, 2):
            try:
                _fetch_url(url, dest, self.timeout, entry.size)
                return
            except urllib.error.HTTPError as exc:
                transient = exc.code >= 500 or exc.code == 429
                reason = f"HTTP {exc.code} {exc.reason}"
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
                transient = True
                reason = str(getattr(exc, "reason", None) or exc)
            if not transient or attempt == 2:
                raise DatasetError(
                    f"could not download {entry.path} from {url} ({reason}, attempt {attempt}); check the network and "
                    f"rerun {_download_command(self.version, self.root)} (valid files are kept and skipped), or fetch "
                    f"the archive {self.archive_url} by other means and import it with "
                    f"{_download_command(self.version, self.root, 'ARCHIVE.zip')}"
                )
            time.sleep(RETRY_DELAY_S)

    def close(self) -> None:
        return None


class _FolderSource:
    """Files from a local clone or folder."""

    def __init__(self, folder: Path, files: list[ManifestFile]) -> None:
        self.folder = self._locate(folder, files)
        self.description = str(self.folder)

    @staticmethod
    def _locate(folder: Path, files: list[ManifestFile]) -> Path:
        """``folder`` itself, or the subfolder holding most dataset files (an unpacked archive)."""
        candidates = [folder] + sorted(child for child in folder.iterdir() if child.is_dir())
        return max(candidates, key=lambda c: sum((c / f.path).is_file() for f in files))

    def check(self, files: list[ManifestFile]) -> None:
        missing = [(f.path, "missing") for f in files if not (self.folder / f.path).is_file()]
        if missing:
            raise DatasetError(
                f"cannot import from {self.folder}: {len(missing)} of {len(files)} dataset files are not there "
                f"({_listing(missing)}); point --from at an unmodified clone of the pinned upstream commit "
                "(the folder that holds cheer/, gesture/, ...)"
            )

    def fetch(self, entry: ManifestFile, dest: Path) -> None:
        with open(self.folder / entry.path, "rb") as reader:
            _copy_capped(reader, dest, entry.size)

    def close(self) -> None:
        return None


class _ZipSource:
    """Files from a zip archive, optionally under one top folder such as ``ActionBench-<commit>/``."""

    def __init__(self, archive: Path, files: list[ManifestFile]) -> None:
        self.archive = archive
        self.description = str(archive)
        try:
            self.zip = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetError(
                f"cannot import from {archive}: not a readable zip archive ({exc}); download the archive again"
            ) from None
        try:
            self.entries = self._safe_entries()
            self.prefix = self._prefix(files)
        except BaseException:
            self.zip.close()
            raise

    def _safe_entries(self) -> dict[str, zipfile.ZipInfo]:
        entries: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            reason = _unsafe_reason(info.filename)
            if reason:
                raise DatasetError(
                    f"refusing to import {self.archive}: entry {info.filename!r} {reason} and would be written "
                    "outside the target folder; nothing was written. Use an unmodified archive of the pinned "
                    "upstream commit or a clone"
                )
            if not info.is_dir():
                entries[info.filename.replace("\\", "/")] = info
        return entries

    def _prefix(self, files: list[ManifestFile]) -> str:
        """The top folder (``""`` or ``"name/"``) under which most dataset files sit."""
        candidates = {""} | {name.split("/", 1)[0] + "/" for name in self.entries if "/" in name}
        return max(sorted(candidates), key=lambda p: sum(p + f.path in self.entries for f in files))

    def check(self, files: list[ManifestFile]) -> None:
        missing = [(f.path, "missing") for f in files if self.prefix + f.path not in self.entries]
        if missing:
            where = f" under {self.prefix!r}" if self.prefix else ""
            raise DatasetError(
                f"cannot import from {self.archive}: {len(missing)} of {len(files)} dataset files are not in the "
                f"archive{where} ({_listing(missing)}); use an archive of the pinned upstream commit"
            )

    def fetch(self, entry: ManifestFile, dest: Path) -> None:
        with self.zip.open(self.entries[self.prefix + entry.path]) as reader:
            _copy_capped(reader, dest, entry.size)

    def close(self) -> None:
        self.zip.close()


def _open_source(
    source: str | Path | None, manifest: dict, files: list[ManifestFile], version: str, root: Path, timeout: float
) -> _Source:
    if source is None:
        return _UrlSource(manifest, version, root, timeout)
    path = Path(source).expanduser()
    if path.is_dir():
        return _FolderSource(path, files)
    if path.is_file():
        return _ZipSource(path, files)
    raise DatasetError(
        f"import source {path} does not exist; give a clone or folder of ActionBench, or its zip archive"
    )


# --------------------------------------------------------------------------- public API


def download(
    version: str = "v1",
    root: str | Path | None = None,
    source: str | Path | None = None,
    progress: bool = True,
    *,
    timeout: float = TIMEOUT_S,
) -> DownloadReport:
    """Fetch or import the dataset files of ``version`` into ``root``, checking every file.

    Args:
        version: dataset version, e.g. ``"v1"``.
        root: target folder; default ``$ACTIONBENCH_HOME/actionbench-<version>``.
        source: ``None`` to download from the pinned upstream commit, or a local
            clone/folder or ``.zip`` archive to import from.
        progress: show a progress bar on stderr.
        timeout: seconds per HTTP request (one retry on network errors).

    Files already present with the right size and SHA-256 are skipped; invalid ones
    are replaced. Temporaries left by an interrupted run are removed first.

    Raises:
        DatasetError: unknown version, unusable source (missing file, unsafe zip entry,
            network failure); nothing unsafe is ever written.
        IntegrityError: fetched bytes do not match the manifest (the bad copy is deleted;
            files that did match are kept).
    """
    manifest, files = _load(version)
    root = Path(root).expanduser() if root is not None else default_data_root(version)
    if root.exists() and not root.is_dir():
        raise DatasetError(f"download target {root} is a file, not a folder; choose another --root or remove it")
    src = _open_source(source, manifest, files, version, root, timeout)
    try:
        src.check(files)  # fail before anything is written
        root.mkdir(parents=True, exist_ok=True)
        stale = remove_stale_temporaries(root)
        fetched = skipped = nbytes = 0
        failures: list[tuple[str, str]] = []
        for entry in progress_bar(files, desc=f"ActionBench {version}", total=len(files), disable=None if progress else True):
            target = root / PurePosixPath(entry.path)
            if _check(target, entry) is None:
                skipped += 1
                continue
            try:
                with atomic_path(target) as tmp:
                    src.fetch(entry, tmp)
                    problem = _check(tmp, entry)
                    if problem is not None:
                        raise IntegrityError(problem)  # atomic_path deletes the temporary
            except IntegrityError as exc:
                failures.append((entry.path, f"{exc} (deleted)"))
                continue
            fetched += 1
            nbytes += entry.size
    finally:
        src.close()

    if failures:
        origin = "the pinned upstream commit" if source is None else str(source)
        raise IntegrityError(
            f"{len(failures)} file(s) from {origin} do not match the ActionBench {version} manifest: "
            f"{_listing(failures)}. The other {fetched + skipped} file(s) are in place under {root}. "
            + (
                f"Rerun {_download_command(version, root)} to fetch the rest again; if the hashes still differ, the "
                "server or a proxy alters the files: import an archive of the pinned commit with --from"
                if source is None
                else "The source is not an unmodified copy of the pinned upstream commit: fix or replace it, or "
                f"download from upstream with {_download_command(version, root)}"
            )
        )
    return DownloadReport(
        version=version,
        root=root,
        source=src.description,
        total=len(files),
        fetched=fetched,
        skipped=skipped,
        bytes_fetched=nbytes,
        stale_removed=stale,
    )


def verify(version: str = "v1", root: str | Path | None = None, progress: bool = True) -> VerifyReport:
    """Re-hash every dataset file under ``root`` against the manifest of ``version``.

    Returns a ``VerifyReport`` when all files match.

    Raises:
        DatasetError: unknown version, or nothing downloaded under ``root`` yet.
        IntegrityError: naming each missing or mismatching file (the first few), with
            the command that re-fetches them (``download`` replaces bad files).
    """
    _, files = _load(version)
    root = Path(root).expanduser() if root is not None else default_data_root(version)
    fix = _download_command(version, root)
    if not root.is_dir():
        raise DatasetError(f"ActionBench {version} is not downloaded: {root} does not exist; run {fix}")
    problems: list[tuple[str, str]] = []
    for entry in progress_bar(files, desc=f"verify {version}", total=len(files), disable=None if progress else True):
        problem = _check(root / PurePosixPath(entry.path), entry)
        if problem is not None:
            problems.append((entry.path, problem))
    if problems:
        raise IntegrityError(
            f"{len(problems)} of {len(files)} ActionBench {version} file(s) under {root} are missing or corrupt: "
            f"{_listing(problems)}; run {fix} to re-fetch them (download replaces bad files and keeps valid ones)"
        )
    return VerifyReport(version=version, root=root, files=len(files), bytes=sum(f.size for f in files))

