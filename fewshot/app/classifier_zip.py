"""*Save classifier* and *Load classifier*: the session's classifier as a zip of its saved folder, and a zip read
back into a label set and a classifier, trusting only its examples and bounded options (its arrays are fitted again).
"""

from __future__ import annotations

import copy
import json
import shutil
import zipfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import ClassifierConfig
from ..errors import FewShotError
from ..multilabel.table import split_label_cell
from . import downloads, tiers
from . import session_classifier as sc
from . import state as st
from .warmup import shared_encoder

MAX_ZIP_BYTES = 100 * 1024 * 1024
ZIP_FOLDER = "fewshot_classifier"


def save_zip(fitted: sc.Fitted) -> Path:
    """The classifier as a zip of the folder :meth:`FewShotClassifier.save` writes, less a multi-label classifier's
    fitted per-label model: an uploaded zip's arrays are not trusted, and loading fits it again from the examples
    (deterministically: the same answers)."""
    work = downloads.out_dir()
    clf = fitted.clf
    if not clf.config.auto_unknown:
        # saved as the app answers by default (*Unknown: automatic*), so that Python and the CLI answer as the app
        # does: unknown below the automatic threshold (multi-label: no label when none reaches its threshold)
        clf = copy.copy(clf)
        clf.config = replace(clf.config, auto_unknown=True)
    folder = clf.save(work / ZIP_FOLDER)
    path = work / "fewshot_classifier.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(_zip_files()):  # the adapted weights when fine-tuned
            if (folder / name).is_file():
                zf.write(folder / name, f"{ZIP_FOLDER}/{name}")
    return path


def _zip_files() -> frozenset[str]:
    """The files of a classifier zip the app writes and reads: no multi-label model, nor a fine-tuning's fold
    copies (an uploaded zip's arrays are not trusted; loading fits them again from the examples)."""
    from ..finetuned import FINETUNE_FILE
    from ..persist import CONFIG_FILE, EXAMPLES_FILE, INDEX_FILE

    return frozenset({CONFIG_FILE, EXAMPLES_FILE, INDEX_FILE, FINETUNE_FILE})


def _sanitize_saved_config(path: Path) -> None:
    """Rewrite an uploaded ``config.json`` so only safe, bounded options reach the classifier."""
    from ..persist import CONFIG_FILE

    meta = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise FewShotError(f"{CONFIG_FILE} in the zip has no 'config' section; it is not a saved classifier")
    meta["config"] = {"model": None} | st.safe_options(meta["config"], _saved_labels(path.parent))
    path.write_text(json.dumps(meta), encoding="utf-8")


def _saved_labels(folder: Path) -> list[str] | None:
    """The labels of a saved folder's ``examples.csv`` (each ``;``-separated label of a cell), None when it has no
    label column (the library's own error then says so)."""
    from ..persist import EXAMPLES_FILE

    df = pd.read_csv(folder / EXAMPLES_FILE, dtype=str, keep_default_na=False)
    if "label" not in df.columns:
        return None
    return sorted({lab for cell in df["label"] for lab in split_label_cell(cell)})


def load_zip(path: str | Path) -> tuple[dict[str, Any], sc.Fitted]:
    """A state and fitted classifier from a zip written by :func:`save_zip` (or a zipped saved folder)."""
    from ..classifier import FewShotClassifier
    from ..persist import CONFIG_FILE, read_zip

    if not zipfile.is_zipfile(path):
        raise FewShotError(f"{Path(path).name} is not a zip file; save a classifier with 'Save classifier'")
    work = downloads.out_dir()
    try:
        for name, data in read_zip(path, names=_zip_files(), max_bytes=MAX_ZIP_BYTES).items():
            (work / name).write_bytes(data)
        point, saved_model = saved_operating_point(work / CONFIG_FILE)
        _sanitize_saved_config(work / CONFIG_FILE)
        int8, tier = saved_encoder_kind(work / CONFIG_FILE)
        # the encoder it was saved with when this app has it (the saved vectors and a fine-tuning stay valid),
        # else the fast one, re-encoding the examples on purpose
        clf = FewShotClassifier.load(work, encoder=shared_encoder(int8, tier), reencode=True)
        note = ""
        if point is not None and saved_model not in (None, clf.encoder.name):
            note = (f"its unknown threshold {point:.2f} was chosen with the encoder {saved_model!r}; this app uses "
                    f"{clf.encoder.name!r}, so the automatic unknown applies instead")
        elif point is not None:  # the operating point chosen when it was saved (Evaluate, or --threshold)
            clf.set_params(score_threshold=point)
    except FewShotError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError, OSError, zipfile.BadZipFile) as exc:
        raise FewShotError(f"{Path(path).name} is not a valid saved classifier ({type(exc).__name__}: "
                           f"{str(exc)[:120]})") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    examples = clf.examples
    options = {k: v for k, v in asdict(clf.config).items() if k in st.PORTABLE_OPTIONS}
    defaults = asdict(ClassifierConfig())
    options = {k: v for k, v in options.items() if v != defaults[k]}
    cells = examples["label"]
    if options.get("multi_label"):  # the library stores "a;b"; the app shows "a; b"
        cells = [st.CELL_SEPARATOR.join(st.cell_labels(str(c), True)) for c in cells]
    rows = st.clean_rows([[lab, text] for lab, text in zip(cells, examples["text"])])
    state: dict[str, Any] = {"rows": rows, "options": options}
    label_set = st.label_set_id(state)  # as fitted_classifier and with_point derive it
    if clf.config.score_threshold is not None:  # kept with the label set: it applies again after a reload or Undo
        state = st.with_point(state, clf.config.score_threshold, tier)
    return state, sc.Fitted(sc.fitted_key(label_set, int8, tier), clf, int8=int8, note=note, label_set=label_set,
                            tier=tier)


def saved_operating_point(config_path: Path) -> tuple[float | None, str | None]:
    """The unknown threshold a saved classifier's ``config.json`` carries (``score_threshold``: its chosen
    operating point, kept when finite and within :data:`st.SCORE_BOUND`, else None) and the encoder model it was
    chosen with (None when not recorded)."""
    meta = json.loads(config_path.read_text(encoding="utf-8"))
    config = meta.get("config") if isinstance(meta, dict) else None
    value = config.get("score_threshold") if isinstance(config, dict) else None
    record = meta.get("encoder") if isinstance(meta, dict) else None
    model = record.get("model") if isinstance(record, dict) and isinstance(record.get("model"), str) else None
    return st.bounded_score(value), model


def saved_encoder_kind(config_path: Path) -> tuple[bool, str]:
    """``(int8, tier)`` of the encoder a saved classifier's ``config.json`` records: the accurate tier when it
    names that tier's model and this app can load it, else the fast one."""
    record = json.loads(config_path.read_text(encoding="utf-8")).get("encoder")
    record = record if isinstance(record, dict) else {}
    int8 = bool(record.get("int8", record.get("quantized", False)))
    accurate = record.get("model") == tiers.model_for(tiers.ACCURATE) and not tiers.problem(tiers.ACCURATE)
    return int8, tiers.ACCURATE if accurate else tiers.FAST
