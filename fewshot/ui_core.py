"""The web app's logic without Gradio: label-set rows, a per-session classifier, files in and out.

The app keeps a label set as plain JSON (``{"rows": [[label, text], ...], "options": {...}}``) so it can
live in the browser (``gr.BrowserState``) and in a per-session ``gr.State``. Everything here calls the
library (:class:`~fewshot.FewShotClassifier`, :mod:`fewshot.csvio`, :mod:`fewshot.metrics`,
:mod:`fewshot.diagnostics`); user mistakes raise :class:`~fewshot.FewShotError` with a readable message.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .classifier import CONFIG_FILE, EXAMPLES_FILE, INDEX_FILE, ClassifierConfig, FewShotClassifier
from .csvio import neutralize_formulas, read_table
from .diagnostics import Finding, diagnose
from .encoder import Encoder
from .errors import FewShotError
from .metrics import evaluate

NONE_LABEL = ClassifierConfig.unknown_label  # examples under this label are "none of these" examples

ASSETS = Path(__file__).resolve().parent.parent / "assets"
LABEL_SETS_DIR = ASSETS / "label_sets"

MAX_EXAMPLES = int(os.environ.get("FEWSHOT_MAX_EXAMPLES", "5000"))
MAX_ROWS = int(os.environ.get("FEWSHOT_MAX_ROWS", "20000"))
MAX_TEXT_CHARS = int(os.environ.get("FEWSHOT_MAX_TEXT_CHARS", "2000"))
MAX_LABEL_CHARS = 100
MAX_ZIP_BYTES = 100 * 1024 * 1024
OUT_TTL_SECONDS = 3600
ZIP_FOLDER = "fewshot_classifier"
# options a saved classifier may carry into the app (the encoder is always the app's own)
PORTABLE_OPTIONS = tuple(f.name for f in fields(ClassifierConfig)
                         if f.name not in {"model", "batch_size", "quantize", "extra_layers", "unknown_threshold"})

OPTION_BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (1e-4, 100.0), "matching_temperature": (1e-4, 100.0), "k": (1, 200),
    "head_steps": (0, 2000), "head_weight_decay": (0.0, 1.0), "auto_max_drop": (0.0, 0.5),
}

Rows = list[list[str]]
ProgressFn = Callable[[int, int], None]


def empty_state() -> dict[str, Any]:
    """A fresh label set: no rows, default options."""
    return {"rows": [], "options": {}}


def _int8_default() -> bool:
    """``FEWSHOT_INT8`` (1/0); on when unset: on 2 cores the int8 encoder measured 2.0x fp32 throughput, 5-shot
    accuracy within 0.3 points and the same single-sentence time over HTTP (``bench/speed.py``)."""
    return os.environ.get("FEWSHOT_INT8", "1").strip().lower() not in {"0", "false", "no", "off"}


INT8_DEFAULT = _int8_default()
"""Where the app's "int8 encoder" box starts (each session may change it)."""


@lru_cache(maxsize=2)
def shared_encoder(quantize: bool = False) -> Encoder:
    """The process's encoder (fp32 or int8): weights shared read-only by every session (labels never are)."""
    return Encoder(os.environ.get("FEWSHOT_MODEL") or None, quantize=quantize)


def int8_flag(value: Any) -> bool:
    """The app's int8 switch from a request (a browser or API client may send anything)."""
    if value is None:
        return INT8_DEFAULT
    if not isinstance(value, (bool, int, float)):
        raise FewShotError(f"fast_encoder must be true or false, got {value!r:.40}")
    return bool(value)


def auth_from_env(value: str | None = None) -> list[tuple[str, str]] | None:
    """``FEWSHOT_AUTH="user:pw[,user2:pw2]"`` -> Gradio's ``auth`` list; None when unset or empty."""
    value = os.environ.get("FEWSHOT_AUTH", "") if value is None else value
    pairs = []
    for item in filter(None, (p.strip() for p in value.split(","))):
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise FewShotError("FEWSHOT_AUTH must look like 'user:password' (several separated by commas)")
        pairs.append((user, password))
    return pairs or None


# ---- rows ------------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def clean_rows(table: Any) -> Rows:
    """Rows ``[label, text]`` from a table (list of lists or DataFrame); fully blank rows are dropped."""
    if isinstance(table, pd.DataFrame):
        table = table.values.tolist()
    if isinstance(table, dict) and "data" in table:
        table = table["data"]
    if not isinstance(table, (list, tuple)):
        raise FewShotError("the label table must be a list of [label, text] rows")
    rows = []
    for row in table:
        if not isinstance(row, (list, tuple)):
            raise FewShotError(f"each row of the label table must be [label, text], got {row!r:.60}")
        cells = [_cell(c) for c in list(row)[:2]] + [""] * max(0, 2 - len(row))
        label, text = " ".join(cells[0].split()), cells[1].strip()
        if label or text:
            rows.append([label, text])
    if len(rows) > MAX_EXAMPLES:
        raise FewShotError(f"a label set holds at most {MAX_EXAMPLES} examples here, got {len(rows)}; "
                           "keep the best few per label (few-shot works with 5-20)")
    return rows


def complete_rows(rows: Rows) -> Rows:
    """Rows with both a label and a text (the ones the classifier uses)."""
    return [r for r in rows if r[0] and r[1]]


def check_label(label: str) -> str:
    """A label name, trimmed; refuses empty or overlong names."""
    label = " ".join(str(label or "").split())
    if not label:
        raise FewShotError("the label name is empty; type a name such as 'billing'")
    if len(label) > MAX_LABEL_CHARS:
        raise FewShotError(f"label names are at most {MAX_LABEL_CHARS} characters, got {len(label)}")
    return label


def add_examples(state: dict[str, Any], label: str, lines: str) -> dict[str, Any]:
    """A new state with one example per non-blank line of ``lines`` added under ``label``."""
    label = check_label(label)
    texts = [t.strip() for t in str(lines or "").splitlines() if t.strip()]
    if not texts:
        raise FewShotError(f"no example text for {label!r}; write one example per line")
    rows = state_rows(state) + [[label, t[:MAX_TEXT_CHARS]] for t in texts]
    return with_rows(state, clean_rows(rows))


def remove_label(state: dict[str, Any], label: str) -> dict[str, Any]:
    """A new state without ``label`` and its examples."""
    rows = state_rows(state)
    if not any(r[0] == label for r in rows):
        raise FewShotError(f"there is no label {label!r}; labels are {labels_of(rows)}")
    return with_rows(state, [r for r in rows if r[0] != label])


def state_rows(state: Any) -> Rows:
    """The rows of a state (validated, since a browser may send anything)."""
    if not isinstance(state, dict):
        return []
    return clean_rows(state.get("rows") or [])


def safe_options(options: Any) -> dict[str, Any]:
    """Classifier options from an untrusted source (a browser, a zip): portable keys, right types, bounded.

    Anything else is dropped (the default applies), so a crafted value cannot make a fit run for hours.
    """
    defaults = asdict(ClassifierConfig())
    out: dict[str, Any] = {}
    for key, value in (options if isinstance(options, dict) else {}).items():
        if key not in PORTABLE_OPTIONS or type(value) is not type(defaults[key]):
            continue
        low, high = OPTION_BOUNDS.get(key, (None, None))
        if low is not None and not low <= value <= high:
            continue
        if isinstance(value, str) and len(value) > MAX_LABEL_CHARS:
            continue
        out[key] = value
    return out


def state_options(state: Any) -> dict[str, Any]:
    """Classifier options of a state (see :func:`safe_options`)."""
    return safe_options(state.get("options") if isinstance(state, dict) else None)


def with_rows(state: dict[str, Any], rows: Rows, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new state dict (never mutates ``state``); the previous rows are kept for one undo."""
    old = state_rows(state)
    new = {"rows": [list(r) for r in rows], "options": dict(state_options(state) if options is None else options)}
    if old != new["rows"]:
        new["previous"] = {"rows": old, "options": state_options(state)}
    elif isinstance(state, dict) and isinstance(state.get("previous"), dict):
        new["previous"] = state["previous"]
    return new


def undo(state: dict[str, Any]) -> dict[str, Any]:
    """The state before the last change (the current one becomes undoable in turn)."""
    previous = state.get("previous") if isinstance(state, dict) else None
    if not isinstance(previous, dict):
        raise FewShotError("nothing to undo")
    return with_rows(state, state_rows(previous), state_options(previous))


def labels_of(rows: Rows) -> list[str]:
    """Distinct labels of complete rows, sorted."""
    return sorted({r[0] for r in complete_rows(rows)})


def counts_of(rows: Rows) -> dict[str, int]:
    """Examples per label."""
    out: dict[str, int] = {}
    for label, _ in complete_rows(rows):
        out[label] = out.get(label, 0) + 1
    return dict(sorted(out.items()))


# ---- example label sets ----------------------------------------------------------------------------
def example_sets() -> dict[str, Path]:
    """Display name -> CSV file of the ready label sets in ``assets/label_sets``."""
    files = sorted(LABEL_SETS_DIR.glob("*.csv")) if LABEL_SETS_DIR.is_dir() else []
    return {p.stem.replace("_", " ").capitalize(): p for p in files}


def load_example_set(name: str) -> Rows:
    """Rows of a ready label set by display name (or file stem)."""
    sets = example_sets()
    by_stem = {p.stem: p for p in sets.values()}
    path = sets.get(str(name)) or by_stem.get(str(name))
    if path is None:
        raise FewShotError(f"no example label set {name!r}; choose one of {list(sets)}")
    return rows_from_csv(path)


def rows_from_csv(path: str | Path, display_name: str | None = None) -> Rows:
    """Rows from a ``text,label`` CSV (column order free)."""
    df = read_csv_friendly(path, ["text", "label"], display_name)
    return clean_rows([[lab, text[:MAX_TEXT_CHARS]] for lab, text in zip(df["label"], df["text"])])


def read_csv_friendly(path: str | Path, columns: list[str], display_name: str | None = None) -> pd.DataFrame:
    """:func:`fewshot.csvio.read_table`, with the upload's temp path replaced by its plain file name."""
    try:
        return read_table(path, columns)
    except FewShotError as exc:
        name = display_name or Path(path).name
        msg = str(exc).replace(str(path), name).replace("Choose others with --text-column / --label-column",
                                                         "Choose the columns above")
        if "--encoding cp1252" in msg:  # the app has no encoding option: say what to do here
            msg = msg[: msg.index("it may be")] + ("it may be Windows-1252 (cp1252) or Latin-1: save it as "
                                                    "UTF-8 (or UTF-16) in your editor and upload it again")
        raise FewShotError(msg) from exc


# ---- the per-session classifier --------------------------------------------------------------------
@dataclass
class Fitted:
    """A classifier fitted on one version of a label set (kept in the session's ``gr.State``)."""

    key: str
    clf: FewShotClassifier


def state_key(rows: Rows, options: dict[str, Any]) -> str:
    """A content hash of the rows and options (same label set -> same key)."""
    blob = json.dumps([complete_rows(rows), options], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def fitted_classifier(state: dict[str, Any], cache: Fitted | None, progress: ProgressFn | None = None,
                      quantize: bool = False) -> Fitted:
    """The session's classifier for ``state``: reused when the label set and encoder did not change, else refitted.

    ``quantize``: the int8 encoder (see :mod:`fewshot.int8`); switching refits, since the vectors differ.
    """
    rows, options = complete_rows(state_rows(state)), state_options(state)
    key = state_key(rows, options) + ("/int8" if quantize else "")
    if isinstance(cache, Fitted) and cache.key == key:
        return cache
    if len(labels_of(rows)) < 2:
        have = labels_of(rows)
        raise FewShotError("the classifier needs examples for at least 2 labels; "
                           + (f"you have only {have}. " if have else "you have none yet. ")
                           + "Add labels on the Labels tab or load an example set")
    clf = FewShotClassifier(encoder=shared_encoder(quantize), quantize=quantize, **options)
    clf.fit([r[1] for r in rows], [r[0] for r in rows], progress=progress)
    return Fitted(key, clf)


@dataclass
class Unknown:
    """How the app answers 'unknown' for one request (see :func:`set_unknown`)."""

    mode: str  # "auto": in-scope score below the automatic threshold; "confidence"; "off"
    threshold: float | None = None  # "auto": score units (the head's top logit); "confidence": 0-1
    note: str = ""  # why "auto" was asked for but is not applied


def auto_threshold(clf: FewShotClassifier) -> tuple[float | None, str]:
    """The classifier's automatic threshold (cached per label set), or None and the reason it has none."""
    try:
        return float(clf.auto_threshold_), ""
    except FewShotError as exc:
        return None, str(exc).replace("unknown_threshold='auto'", "the automatic unknown")


def set_unknown(clf: FewShotClassifier, auto: Any, threshold: float | None) -> Unknown:
    """Apply the user's unknown rule: automatic (from the examples), a confidence floor, or none.

    ``auto`` true: ``unknown_threshold="auto"``, the slider is ignored; when the label set is too small
    for the cross-validated threshold (no label with 2 examples) nothing is answered unknown and the
    returned note says why. ``auto`` false: ``threshold`` is a confidence in [0, 1]; 0 or None: never unknown.
    """
    if auto is not None and not isinstance(auto, (bool, int, float)):
        raise FewShotError(f"auto_unknown must be true or false, got {auto!r:.40}")
    if auto:
        value, note = auto_threshold(clf)
        clf.config.unknown_threshold = "auto" if value is not None else None
        return Unknown("auto", value) if value is not None else Unknown("off", None, note)
    try:
        value = float(threshold or 0.0)
    except (TypeError, ValueError) as exc:
        raise FewShotError(f"the threshold must be a number between 0 and 1, got {threshold!r:.40}") from exc
    if not 0.0 <= value <= 1.0:
        raise FewShotError(f"the threshold must be between 0 and 1, got {value}")
    clf.config.unknown_threshold = value if value > 0 else None
    return Unknown("confidence", value) if value > 0 else Unknown("off")


def findings(rows: Rows) -> list[Finding]:
    """Diagnostics of the complete rows, using the shared encoder's (cached) embeddings."""
    rows = complete_rows(rows)
    texts, labels = [r[1] for r in rows], [r[0] for r in rows]
    vectors = shared_encoder().encode(texts) if texts else None
    return diagnose(texts, labels, vectors)


# ---- output files ----------------------------------------------------------------------------------
def out_dir() -> Path:
    """A fresh folder for one download, under the app's temp folder (folders older than an hour pruned)."""
    base = Path(tempfile.gettempdir()) / "fewshot-app"
    base.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in base.iterdir():
        try:
            if now - old.stat().st_mtime > OUT_TTL_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(dir=base))


def safe_stem(name: str, default: str) -> str:
    """A file stem made of safe characters only."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(str(name or "")).stem)[:60]
    return stem.strip("_") or default


def export_csv(rows: Rows) -> Path:
    """The label set as a ``text,label`` CSV (formula cells neutralised)."""
    rows = complete_rows(rows)
    if not rows:
        raise FewShotError("the label set is empty; nothing to export")
    df = pd.DataFrame({"text": [r[1] for r in rows], "label": [r[0] for r in rows]})
    path = out_dir() / "label_set.csv"
    neutralize_formulas(df).to_csv(path, index=False)
    return path


def save_zip(fitted: Fitted) -> Path:
    """The classifier as a zip of the folder :meth:`FewShotClassifier.save` writes."""
    work = out_dir()
    folder = fitted.clf.save(work / ZIP_FOLDER)
    path = work / "fewshot_classifier.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in (CONFIG_FILE, EXAMPLES_FILE, INDEX_FILE):
            if (folder / name).is_file():
                zf.write(folder / name, f"{ZIP_FOLDER}/{name}")
    return path


def _zip_members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The classifier files inside a zip (at the root or in one folder); refuses unsafe or huge entries."""
    wanted = {CONFIG_FILE, EXAMPLES_FILE, INDEX_FILE}
    found: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        parts = [p for p in name.split("/") if p]
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            raise FewShotError(f"the zip holds an unsafe path {info.filename!r}; it was not opened")
        if info.is_dir() or not parts or parts[-1] not in wanted or len(parts) > 2:
            continue
        total += info.file_size
        if total > MAX_ZIP_BYTES:
            raise FewShotError(f"the zip unpacks to more than {MAX_ZIP_BYTES // 2**20} MB; it was not opened")
        found.setdefault(parts[-1], info)
    if CONFIG_FILE not in found or EXAMPLES_FILE not in found:
        raise FewShotError(f"the zip is not a saved classifier: it needs {CONFIG_FILE} and {EXAMPLES_FILE} "
                           "(the folder written by 'Save classifier' or `fewshot fit`)")
    return found


def _sanitize_saved_config(path: Path) -> None:
    """Rewrite an uploaded ``config.json`` so only safe, bounded options reach the classifier."""
    meta = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise FewShotError(f"{CONFIG_FILE} in the zip has no 'config' section; it is not a saved classifier")
    meta["config"] = {"model": None} | safe_options(meta["config"])
    path.write_text(json.dumps(meta), encoding="utf-8")


def load_zip(path: str | Path) -> tuple[dict[str, Any], Fitted]:
    """A state and fitted classifier from a zip written by :func:`save_zip` (or a zipped saved folder)."""
    if not zipfile.is_zipfile(path):
        raise FewShotError(f"{Path(path).name} is not a zip file; save a classifier with 'Save classifier'")
    work = out_dir()
    try:
        with zipfile.ZipFile(path) as zf:
            for name, info in _zip_members(zf).items():
                (work / name).write_bytes(zf.read(info))
        _sanitize_saved_config(work / CONFIG_FILE)
        clf = FewShotClassifier.load(work, encoder=shared_encoder())
    except FewShotError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError, OSError, zipfile.BadZipFile) as exc:
        raise FewShotError(f"{Path(path).name} is not a valid saved classifier ({type(exc).__name__}: "
                           f"{str(exc)[:120]})") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    examples = clf.examples
    rows = clean_rows([[lab, text] for lab, text in zip(examples["label"], examples["text"])])
    options = {k: v for k, v in asdict(clf.config).items() if k in PORTABLE_OPTIONS}
    defaults = asdict(ClassifierConfig())
    options = {k: v for k, v in options.items() if v != defaults[k]}
    state = {"rows": rows, "options": options}
    return state, Fitted(state_key(rows, options), clf)


# ---- batch and evaluation --------------------------------------------------------------------------
def guess_column(columns: list[str], preferred: tuple[str, ...]) -> str | None:
    """The first column whose lower-cased name is in ``preferred``, else None."""
    lower = {c.lower(): c for c in columns}
    return next((lower[p] for p in preferred if p in lower), None)


def read_upload(path: str | Path, display_name: str | None = None) -> pd.DataFrame:
    """An uploaded CSV as strings, with a row limit."""
    df = read_csv_friendly(path, [], display_name)
    if len(df) > MAX_ROWS:
        raise FewShotError(f"{display_name or Path(path).name} has {len(df)} rows; this app classifies at most "
                           f"{MAX_ROWS} per file (use the `fewshot classify` CLI for bigger files)")
    return df


OUTPUT_COLUMNS = ("label", "confidence", "top_3", "in_scope_score")


def output_columns(columns: list[str]) -> tuple[str, ...]:
    """Names of the added columns (prefixed ``predicted_`` when the input already has one of them)."""
    if set(OUTPUT_COLUMNS) & set(columns):
        return tuple(f"predicted_{c}" for c in OUTPUT_COLUMNS)
    return OUTPUT_COLUMNS


def classify_frame(clf: FewShotClassifier, df: pd.DataFrame, column: str,
                   progress: ProgressFn | None = None) -> tuple[pd.DataFrame, int]:
    """``df`` with label, confidence, top-3 and in-scope-score columns; blank texts are kept unlabelled.

    The label is ``unknown`` where the classifier's ``unknown_threshold`` rejects the text (see
    :func:`set_unknown`). Returns the labelled frame and the number of blank rows.
    """
    if column not in df.columns:
        raise FewShotError(f"there is no column {column!r}; the columns are {list(map(str, df.columns))}")
    texts = df[column].astype(str).str.slice(0, MAX_TEXT_CHARS)
    filled = texts.str.strip() != ""
    label_col, conf_col, top_col, score_col = output_columns([str(c) for c in df.columns])
    out = df.copy()
    out[label_col], out[conf_col], out[top_col], out[score_col] = "", "", "", ""
    if filled.any():
        labels, probs, scores = clf.predict_with_scores(texts[filled].tolist(), progress=progress)
        order = np.argsort(-probs, axis=1)[:, :3]
        tops = ["; ".join(f"{clf.classes_[j]} {p[j]:.2f}" for j in o) for p, o in zip(probs, order)]
        out.loc[filled, label_col] = list(labels)
        out.loc[filled, conf_col] = [f"{c:.4f}" for c in probs.max(axis=1)]
        out.loc[filled, top_col] = tops
        out.loc[filled, score_col] = [f"{s:.3f}" for s in scores]
    return out, int((~filled).sum())


def write_labelled(df: pd.DataFrame, source_name: str) -> Path:
    """The labelled CSV, formula cells neutralised, named after the upload."""
    path = out_dir() / f"{safe_stem(source_name, 'texts')}_labelled.csv"
    neutralize_formulas(df).to_csv(path, index=False)
    return path


def evaluate_frame(clf: FewShotClassifier, df: pd.DataFrame, text_col: str, label_col: str,
                   progress: ProgressFn | None = None) -> dict[str, Any]:
    """:func:`fewshot.metrics.evaluate` on two columns, plus the misclassified rows and unseen labels."""
    for col in (text_col, label_col):
        if col not in df.columns:
            raise FewShotError(f"there is no column {col!r}; the columns are {list(map(str, df.columns))}")
    keep = (df[text_col].str.strip() != "") & (df[label_col].str.strip() != "")
    sub = df[keep]
    if sub.empty:
        raise FewShotError(f"no row has both a text in {text_col!r} and a label in {label_col!r}")
    texts = sub[text_col].str.slice(0, MAX_TEXT_CHARS).tolist()
    gold = [" ".join(g.split()) for g in sub[label_col]]
    clf.config.unknown_threshold = None
    result = evaluate(clf, texts, gold, progress=progress)
    wrong = [(t, g, p) for t, g, p in zip(texts, gold, result["predictions"]) if g != p]
    result["misclassified"] = pd.DataFrame(wrong, columns=["text", "gold", "predicted"])
    result["unseen_labels"] = sorted(set(gold) - set(map(str, clf.classes_)))
    result["skipped"] = int((~keep).sum())
    result["gold"] = gold
    return result


def confusion_figure(gold: list[str], pred: list[str]) -> Any:
    """A matplotlib confusion-matrix figure (rows: true label, columns: predicted)."""
    from matplotlib.figure import Figure
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(gold) | set(pred))
    cm = confusion_matrix(gold, pred, labels=labels)
    size = min(9.0, 2.5 + 0.55 * len(labels))
    fig = Figure(figsize=(size + 1, size), dpi=90)
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues")
    names = [lab if len(lab) <= 18 else lab[:17] + "…" for lab in labels]
    ax.set_xticks(range(len(labels)), names, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = cm.max() if cm.size else 0
    if len(labels) <= 25:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if cm[i, j] > top / 2 else "black")
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    return fig
