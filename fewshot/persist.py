"""A classifier's folder on disk: ``config.json``, ``examples.csv``, ``index.faiss`` (no pickle, ever).

Writing is atomic (a staged folder swapped in with renames, so one complete save always exists); reading
checks that the saved vectors come from the encoder in use before it reuses them, and maps configs saved
under old option names onto the current ones silently. The same folder zipped (the app's *Save classifier*, or
a path ending in ``.zip``) is read and written too: its files at the zip's root or in one folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .config import migrate_options
from .errors import FewShotError
from .io.tables import is_classifier_zip
from .support import SupportIndex

CONFIG_FILE = "config.json"
EXAMPLES_FILE = "examples.csv"
INDEX_FILE = "index.faiss"
SAVE_FILES = frozenset({CONFIG_FILE, EXAMPLES_FILE, INDEX_FILE, "finetune.safetensors", "finetune_folds.safetensors",
                        "multilabel.npz", "multilabel.json"})
"""Every file a save may write (:func:`write_folder` refuses others): a folder holding any other is not replaced."""
MAX_ZIP_BYTES = 4 * 1024**3
"""What a classifier zip may unpack to: a bound against a zip bomb, far above what a save writes (the app, which
takes uploads, sets its own lower bound)."""
SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
"""Files a file browser leaves in a folder it showed: replacing a save deletes them without asking."""


@dataclass
class SavedFolder:
    """What a saved folder holds, read and checked: its metadata, options, examples and location."""

    directory: Path
    meta: dict[str, Any]
    model: str | None
    options: dict[str, Any]
    texts: list[str]
    labels: list[str]
    name: str = ""
    """How messages name it: the path the user gave (a zip's, when ``directory`` is where it was unpacked)."""


def write_folder(directory: str | Path, examples: pd.DataFrame, index: SupportIndex, meta: dict[str, Any],
                 files: dict[str, bytes] | None = None) -> Path:
    """Write ``examples.csv``, ``index.faiss``, ``config.json`` (``meta``) and ``files`` (name -> bytes, e.g. a
    fine-tuned classifier's ``finetune.safetensors``) to ``directory`` atomically."""
    directory = Path(directory)
    if set(files or {}) - SAVE_FILES:
        raise ValueError(f"not a save file: {sorted(set(files or {}) - SAVE_FILES)}; add it to SAVE_FILES")
    check_replaceable(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        examples.to_csv(staging / EXAMPLES_FILE, index=False)
        index.save(staging / INDEX_FILE)
        for name, data in (files or {}).items():
            (staging / name).write_bytes(data)
        (staging / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        swap_in(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def check_replaceable(directory: Path) -> None:
    """A save may replace nothing, an empty folder or an earlier save; never a file, nor a folder holding files
    a save does not write (the swap would delete them)."""
    if directory.is_file():
        raise FewShotError(f"{directory} is a file; save the classifier to a folder path")
    if not directory.is_dir():
        return
    entries = {p.name for p in directory.iterdir() if p.name not in SYSTEM_FILES and not p.name.startswith("._")}
    saved = is_saved_classifier(directory)
    others = sorted(entries - SAVE_FILES) if saved else sorted(entries)
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        kind = "a saved classifier with other files" if saved else "a folder of other files"
        raise FewShotError(f"{directory} is {kind} ({shown}); saving would replace the folder and delete them: "
                           "choose a new folder name, or move them out first")


def is_saved_classifier(directory: Path) -> bool:
    """Whether ``directory`` holds a classifier written by :func:`write_folder` (its config and examples)."""
    try:
        meta = json.loads((directory / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "fewshot_version" in meta and (directory / EXAMPLES_FILE).is_file()


def read_folder(directory: str | Path, overrides: dict[str, Any], *, allow_model_paths: bool = True,
                name: str | Path | None = None) -> SavedFolder:
    """Read a folder written by :func:`write_folder`; ``overrides`` replace saved options (old names mapped).

    ``allow_model_paths=False`` (for uploads) refuses a config that points the encoder at a local path; ``name``:
    how messages name the folder (default: ``directory``).
    """
    directory = Path(directory)
    shown = str(name if name is not None else directory)
    if not (directory / CONFIG_FILE).is_file() and (previous(directory) / CONFIG_FILE).is_file():
        directory = previous(directory)  # a save was interrupted between its two renames
    if not directory.exists():
        raise FewShotError(f"classifier not found: {shown} does not exist")
    if not (directory / CONFIG_FILE).is_file():
        raise FewShotError(f"{shown} is not a saved classifier: {CONFIG_FILE} is missing")
    try:
        meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        options = migrate_options(dict(meta["config"]), warn=False) | migrate_options(overrides)
        model = options.pop("model")
        examples = pd.read_csv(directory / EXAMPLES_FILE, dtype=str, keep_default_na=False)
        texts, labels = examples["text"].tolist(), examples["label"].tolist()
    except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError) as exc:
        if isinstance(exc, FewShotError):
            raise
        raise FewShotError(f"{shown} is a damaged saved classifier ({type(exc).__name__}: {exc}); "
                           "save it again or rebuild it from its examples CSV") from exc
    if not allow_model_paths and not is_named_model(model):
        raise FewShotError(f"{shown} asks for the encoder {model!r}; only 'default', 'minilm' or a hub "
                           "id are accepted from an uploaded classifier")
    return SavedFolder(directory, meta, model, options, texts, labels, shown)


def encoder_mismatch(folder: SavedFolder, encoder: Any) -> str | None:
    """How ``encoder``'s model differs from the one that made the folder's vectors (``config.json``'s
    ``encoder`` record: name, base weights, trained folder, int8, extra_layers), or None when it is the same
    model or the save recorded none (old saves).

    Only the model counts (its name, and whether a trained folder's parts are on it): int8 and
    ``extra_layers`` are settings of the same model, whose vectors the loader simply recomputes.
    """
    saved = folder.meta.get("encoder")
    if not isinstance(saved, dict) or not saved.get("model"):
        return None
    now = encoder.describe() if hasattr(encoder, "describe") else {}
    name = getattr(encoder, "name", now.get("model"))

    def said(record: dict[str, Any], model: Any) -> str:
        parts = [f"{model!r}"]
        if record.get("base") and record.get("base") != model:
            parts.append(f"weights {record['base']}")
        if record.get("trained"):
            parts.append(f"trained folder {record['trained']}")
        return ", ".join(parts)

    if saved["model"] != name:
        return f"it was saved with the encoder {said(saved, saved['model'])}; the encoder in use is {said(now, name)}"
    if "trained" in saved and "trained" in now and bool(saved["trained"]) != bool(now["trained"]):
        return (f"it was saved with the encoder {said(saved, saved['model'])}; here {name!r} is "
                f"{said(now, name)} (" + ("without" if saved["trained"] else "with") + " a trained folder)")
    if not same_weights(saved, now):
        return (f"it was saved with other trained weights of the encoder {name!r} (" +
                (f"digest {saved['weights']}" if saved.get("weights") else "an earlier release's") +
                f"; now {now.get('weights')})")
    return None


def same_weights(saved: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether two ``describe()`` records name the same trained weights: both without a trained folder, or
    the same digest (a record from before digests were kept, with a trained folder, counts as other
    weights: ``"default"`` has meant other weights in other releases)."""
    if not saved.get("trained") and not now.get("trained"):
        return True
    return bool(saved.get("weights")) and saved.get("weights") == now.get("weights")


def saved_index(folder: SavedFolder, encoder: Any) -> SupportIndex | None:
    """The saved index when it can be reused: same encoder (vectors from another would mislead), one vector
    per example, readable by FAISS; else None (the caller re-encodes the examples)."""
    saved = folder.meta.get("encoder", {})
    now = encoder.describe() if hasattr(encoder, "describe") else {}
    same_encoder = (saved.get("model") == encoder.name and same_weights(saved, now)
                    and bool(saved.get("int8", saved.get("quantized", False))) == bool(getattr(encoder, "int8", False))
                    and list(saved.get("extra_layers", [])) == list(getattr(encoder, "extra_layers", ())))
    path = folder.directory / INDEX_FILE
    texts = folder.texts
    if not (same_encoder and path.is_file() and len(folder.meta.get("ids", [])) == len(texts) and texts):
        return None
    try:
        index = SupportIndex.load(path)
    except RuntimeError:  # faiss cannot read it: truncated or not an index; re-encode instead
        return None
    if index.dim == encoder.dim and len(index) == len(texts):
        return index
    return None


def previous(directory: Path) -> Path:
    """Where the replaced save waits while a new one is swapped in."""
    return directory.with_name(directory.name + ".previous")


def swap_in(staging: Path, directory: Path) -> None:
    """Replace ``directory`` by ``staging`` with renames only: at every instant one complete save exists."""
    old = previous(directory)
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.replace(directory, old)
    os.replace(staging, directory)
    shutil.rmtree(old, ignore_errors=True)


def is_named_model(model: Any) -> bool:
    """A built-in name or a hub id (``org/name``), not a filesystem path."""
    if model in (None, "default", "minilm", "mpnet"):
        return True
    return isinstance(model, str) and model.count("/") == 1 and not model.startswith((".", "/", "~")) \
        and ".." not in model and "\\" not in model


def is_zip_path(path: str | Path) -> bool:
    """Whether ``path`` names a classifier zip: an existing zip file, or a new path ending in ``.zip``."""
    path = Path(path)
    return not path.is_dir() and (path.suffix.lower() == ".zip" or path.is_file() and zipfile.is_zipfile(path))


def read_zip(path: str | Path, *, names: Collection[str] = SAVE_FILES,
             max_bytes: int = MAX_ZIP_BYTES) -> dict[str, bytes]:
    """The saved-classifier files (``names``) inside a zip, at its root or in one folder, as name -> bytes.

    Refuses a zip that is not one (naming what it lacks), an entry with an unsafe path, and more than
    ``max_bytes`` unpacked; other entries (a ``__MACOSX`` folder, notes) are skipped.
    """
    shown = Path(path).name
    try:
        with zipfile.ZipFile(path) as zf:
            found: dict[str, zipfile.ZipInfo] = {}
            total = 0
            for info in zf.infolist():
                name = info.filename.replace("\\", "/")
                parts = [p for p in name.split("/") if p]
                if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                    raise FewShotError(f"{shown} holds an unsafe path {info.filename!r}; it was not opened")
                if info.is_dir() or not parts or parts[-1] not in names or len(parts) > 2:
                    continue
                total += info.file_size
                if total > max_bytes:
                    raise FewShotError(f"{shown} unpacks to more than {max_bytes // 2**20} MB; it was not opened")
                found.setdefault(parts[-1], info)
            if CONFIG_FILE not in found or EXAMPLES_FILE not in found:
                raise FewShotError(f"{shown} is not a saved classifier: it needs {CONFIG_FILE} and {EXAMPLES_FILE} "
                                   "(the folder written by the app's 'Save classifier', `fewshot fit` or "
                                   "FewShotClassifier.save)")
            return {name: zf.read(info) for name, info in found.items()}
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:  # damaged, encrypted
        if "encrypted" in str(exc):
            raise FewShotError(f"{shown} is password-protected; zip the classifier again without a password") from None
        raise FewShotError(f"{shown} is not a readable zip ({type(exc).__name__}: {exc})") from None


@contextmanager
def opened(path: str | Path) -> Iterator[Path]:
    """``path`` as a saved folder: itself, or a zip of one unpacked into a temporary folder (removed afterwards;
    errors raised meanwhile name the zip, not the temporary folder); ``~`` is the home folder."""
    path = Path(path).expanduser()
    if not path.is_file():
        yield path
        return
    if not zipfile.is_zipfile(path):
        raise FewShotError(f"{path} is a file, not a saved classifier: give the folder written by `fewshot fit` or "
                           "FewShotClassifier.save, or a zip of one (the app's 'Save classifier')")
    files = read_zip(path)
    with tempfile.TemporaryDirectory(prefix="fewshot-zip-") as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        try:
            yield Path(tmp)
        except FewShotError as exc:
            raise FewShotError(str(exc).replace(tmp, str(path))) from exc


def write_zip(folder: Path, path: Path) -> Path:
    """Zip a saved ``folder``'s files (at the zip's root) into ``path``, atomically; an existing file there is
    replaced only when it is a classifier zip too."""
    if path.exists() and not is_classifier_zip(path):
        raise FewShotError(f"{path} exists and is not a saved classifier's zip; saving would replace it: choose "
                           "a new name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(SAVE_FILES):
                if (folder / name).is_file():
                    zf.write(folder / name, name)
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)
    return path
