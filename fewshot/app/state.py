"""The web app's session state and logic without Gradio: label-set rows, a per-session classifier, files.

The app keeps a label set as plain JSON (``{"rows": [[label, text], ...], "options": {...}}``) so it can
live in the browser (``gr.BrowserState``) and in a per-session ``gr.State``; every function here returns a
new state and never changes its argument, and nothing mutable is kept at module level (the encoders of
:mod:`fewshot.app.warmup` are read-only). Everything calls the library (:class:`~fewshot.FewShotClassifier`,
:mod:`fewshot.io`, :mod:`fewshot.metrics`, :mod:`fewshot.diagnostics`); user mistakes raise
:class:`~fewshot.FewShotError` with a readable message. Importing this module imports no torch: the
classifier's modules load in the background (:mod:`fewshot.app.warmup`) or at the first fit.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config import ClassifierConfig
from ..diagnostics import Finding, diagnose, diagnose_multilabel
from ..errors import FewShotError
from ..io.output import csv_options, label_frame, output_names
from ..io.tables import (LABEL_COLUMNS, TEXT_COLUMNS, TEXT_SAMPLE_ROWS, guess_column, header_looks_like_data,
                         likely_text_column, neutralize_formulas, read_labelled_table, read_table, sniff)
from ..language import english_encoder_name
from ..multilabel.table import LABEL_SEPARATOR, split_label_cell
from ..progress import ProgressFn
from ..text import label_name
from ..unknown import LABEL_SETS_DIR
from . import tiers
from .settings import env_int
from .warmup import INT8_DEFAULT, shared_encoder

if TYPE_CHECKING:
    from ..classifier import FewShotClassifier, Prediction

NONE_LABEL = ClassifierConfig.unknown_label  # examples under this label are "none of these" examples
CELL_SEPARATOR = LABEL_SEPARATOR + " "
"""How the app writes a multi-label example's labels in one cell (``billing; bug``); read back by the library's
``;`` format (:mod:`fewshot.multilabel.table`)."""

MAX_EXAMPLES = env_int("FEWSHOT_MAX_EXAMPLES", 5000)
MAX_ROWS = env_int("FEWSHOT_MAX_ROWS", 20000)
MAX_INPUT_CHARS = env_int("FEWSHOT_MAX_TEXT_CHARS", 2000)
"""Characters of one text the app classifies or keeps as an example (``FEWSHOT_MAX_TEXT_CHARS``); longer texts
are cut, with a warning. Lower than the library's own cap (:data:`fewshot.text.MAX_TEXT_CHARS`) so that a
public app bounds each request's work."""
MAX_LABEL_CHARS = 100
MAX_THRESHOLD_LABELS = 1000
"""Entries of an uploaded ``label_thresholds`` looked at (the rest are dropped)."""
SCORE_BOUND = 100.0
"""In-scope-score thresholds (an operating point) the app accepts lie within +-SCORE_BOUND (scores are logits or
similarities)."""
MAX_ZIP_BYTES = 100 * 1024 * 1024
OUT_TTL_SECONDS = 3600
ZIP_FOLDER = "fewshot_classifier"
UNKNOWN_OPTIONS = ("min_confidence", "auto_unknown", "score_threshold")
# options a saved classifier may carry into the app (the encoder is always the app's own, the unknown rule
# is chosen per request)
PORTABLE_OPTIONS = tuple(f.name for f in fields(ClassifierConfig)
                         if f.name not in {"model", "batch_size", "int8", "extra_layers", *UNKNOWN_OPTIONS})

OPTION_BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (1e-4, 100.0), "matching_temperature": (1e-4, 100.0), "k": (1, 200),
    "head_steps": (0, 2000), "head_weight_decay": (0.0, 1.0), "auto_max_drop": (0.0, 0.5),
}

Rows = list[list[str]]


def empty_state() -> dict[str, Any]:
    """A fresh label set: no rows, default options."""
    return {"rows": [], "options": {}}


def int8_flag(value: Any) -> bool:
    """The app's int8 switch from a request (a browser or API client may send anything)."""
    if value is None:
        return INT8_DEFAULT
    if not isinstance(value, (bool, int, float)):
        raise FewShotError(f"int8 must be true or false, got {value!r:.40}")
    return bool(value)


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
        label, text = label_name(cells[0]), cells[1].strip()
        if label or text:
            rows.append([label, text])
    if len(rows) > MAX_EXAMPLES:
        raise FewShotError(f"a label set holds at most {MAX_EXAMPLES} examples here, got {len(rows)}; "
                           "keep the best few per label (few-shot works with 5-20)")
    return rows


def complete_rows(rows: Rows) -> Rows:
    """Rows with both a label and a text (the ones the classifier uses)."""
    return [r for r in rows if r[0] and r[1]]


def example_key(text: Any) -> str:
    """A text as the label set compares examples: spacing aside (``"my  card "`` is ``"my card"``)."""
    return " ".join(str(text or "").split())


def check_label(label: str) -> str:
    """A label name, trimmed; refuses empty or overlong names."""
    label = label_name(str(label or ""))
    if not label:
        raise FewShotError("the label name is empty; type a name such as 'billing'")
    if len(label) > MAX_LABEL_CHARS:
        raise FewShotError(f"label names are at most {MAX_LABEL_CHARS} characters, got {len(label)}")
    return label


def cell_labels(cell: str, multi: bool) -> list[str]:
    """The labels of one row's label cell: the cell itself, or in multi-label mode its ``;``-separated labels."""
    if not multi:
        return [cell] if cell else []
    return split_label_cell(cell)


def check_cell(label: str, multi: bool) -> str:
    """A row's label cell from user input: :func:`check_label`, or in multi-label mode each of its ``;``-separated
    labels checked and the cell rewritten as ``a; b``."""
    if not multi:
        return check_label(label)
    parts = cell_labels(str(label or ""), True)
    if not parts:
        raise FewShotError("the label name is empty; type a name such as 'billing' (several: 'billing; bug')")
    return CELL_SEPARATOR.join(check_label(part) for part in parts)


def is_multi(state: Any) -> bool:
    """Whether the label set is in multi-label mode (a text may carry several labels)."""
    return bool(state_options(state).get("multi_label", False))


def set_multi_label(state: dict[str, Any], on: Any) -> dict[str, Any]:
    """A new state in multi-label mode (``on``) or single-label mode; the rows are kept.

    Single-label mode refuses a label set whose examples carry several labels (a cell ``a; b`` or a text repeated
    under two labels): the user's rows are never rewritten behind their back.
    """
    if not isinstance(on, (bool, int, float)):
        raise FewShotError(f"multi_label must be true or false, got {on!r:.40}")
    rows, options = state_rows(state), dict(state_options(state))
    if on:
        options["multi_label"] = True
        return with_rows(state, rows, options)
    several = sorted({r[1] for r in complete_rows(rows) if len(cell_labels(r[0], True)) > 1}
                     | {t for t, labs in example_sets_of(rows).items() if len(labs) > 1})
    if several:
        first = several[0] if len(several[0]) <= 60 else several[0][:59] + "…"
        raise FewShotError(f"{len(several)} example(s) carry several labels (e.g. {first!r}); give each one label "
                           "before switching multi-label off")
    options.pop("multi_label", None)
    return with_rows(state, rows, options)


def example_sets_of(rows: Rows) -> dict[str, list[str]]:
    """Multi-label examples: each distinct text with the union of the labels of its rows (the library's rule)."""
    out: dict[str, dict[str, None]] = {}
    for cell, text in complete_rows(rows):
        out.setdefault(text.strip(), {}).update(dict.fromkeys(cell_labels(cell, True)))
    return {t: list(labs) for t, labs in out.items()}


def add_examples(state: dict[str, Any], label: str, lines: str) -> tuple[dict[str, Any], list[str]]:
    """A new state with one example per non-blank line of ``lines`` added under ``label`` (in multi-label mode
    ``label`` may name several labels: ``billing; bug``), and the lines skipped because they already are an
    example of that label (spacing aside) or repeat an earlier line: a second copy only weighs one example
    twice. With nothing new, the state is returned as it was."""
    label = check_cell(label, is_multi(state))
    texts = [t.strip()[:MAX_INPUT_CHARS] for t in str(lines or "").splitlines() if t.strip()]
    if not texts:
        raise FewShotError(f"no example text for {label!r}; write one example per line")
    rows = state_rows(state)
    have = {example_key(text) for cell, text in complete_rows(rows) if cell == label}
    added, skipped = [], []
    for text in texts:
        key = example_key(text)
        (skipped if key in have else added).append(text)
        have.add(key)
    if not added:
        return state, skipped
    return with_rows(state, clean_rows(rows + [[label, t] for t in added])), skipped


def skipped_note(label: str, skipped: list[str]) -> str:
    """What the app says of the lines :func:`add_examples` skipped."""
    if len(skipped) == 1:
        first = skipped[0] if len(skipped[0]) <= 60 else skipped[0][:57] + "…"
        return f"{first!r} is already an example of {label!r}; not added again"
    return f"{len(skipped)} lines are already examples of {label!r}; not added again"


def remove_label(state: dict[str, Any], label: str) -> dict[str, Any]:
    """A new state without ``label`` and its examples (in multi-label mode the label is taken off every row,
    and rows left without a label are dropped)."""
    rows, multi = state_rows(state), is_multi(state)
    if not any(label in cell_labels(r[0], multi) for r in rows):
        raise FewShotError(f"there is no label {label!r}; labels are {labels_of(rows, multi)}")
    if not multi:
        return with_rows(state, [r for r in rows if r[0] != label])
    kept = [[CELL_SEPARATOR.join(rest), text] for cell, text in rows
            if (rest := [x for x in cell_labels(cell, True) if x != label]) or not cell]
    return with_rows(state, kept)


def rename_label(state: dict[str, Any], label: str, new_name: str) -> tuple[dict[str, Any], bool]:
    """A new state with ``label`` renamed ``new_name`` on every row, and whether it merged into a label that was
    already there (a text then under the merged label twice is kept once). In multi-label mode the label is
    renamed inside each cell; its per-label threshold follows it unless the merged label has one."""
    rows, multi = state_rows(state), is_multi(state)
    labels = labels_of(rows, multi)
    if label not in labels:
        raise FewShotError(f"there is no label {label!r}; labels are {labels}")
    new_name = check_label(new_name)
    if new_name == label:
        raise FewShotError(f"the label is already called {label!r}; type another name")
    if multi and LABEL_SEPARATOR in new_name:
        raise FewShotError(f"a label name cannot contain {LABEL_SEPARATOR!r} in multi-label mode, got {new_name!r}")
    merged = new_name in labels

    def key(cell: str, text: str) -> tuple[str, str]:
        return cell, example_key(text)

    have = {key(cell, text) for cell, text in rows if label not in cell_labels(cell, multi)}
    out: Rows = []
    for cell, text in rows:
        parts = cell_labels(cell, multi)
        if label in parts:
            cell = CELL_SEPARATOR.join(dict.fromkeys(new_name if x == label else x for x in parts))
            if key(cell, text) in have:
                continue  # a merged label's example that the other label already had
            have.add(key(cell, text))
        out.append([cell, text])
    options = dict(state_options(state))
    thresholds = dict(options.get("label_thresholds") or {})
    if label in thresholds:
        value = thresholds.pop(label)
        thresholds.setdefault(new_name, value)
        options["label_thresholds"] = thresholds
    return with_rows(state, out, options), merged


def state_rows(state: Any) -> Rows:
    """The rows of a state (validated, since a browser may send anything)."""
    if not isinstance(state, dict):
        return []
    return clean_rows(state.get("rows") or [])


def safe_options(options: Any, labels: Any = None) -> dict[str, Any]:
    """Classifier options from an untrusted source (a browser, a zip): portable keys, right types, bounded.

    Anything else is dropped (the default applies), so a crafted value cannot make a fit run for hours.
    ``label_thresholds`` (multi-label: per-label probability thresholds) keeps the entries whose label is one
    of ``labels`` (when given) and whose value the library accepts as a threshold; only with ``multi_label``.
    """
    defaults = asdict(ClassifierConfig())
    options = options if isinstance(options, dict) else {}
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key == "label_thresholds":
            kept = _safe_label_thresholds(value, labels) if options.get("multi_label") is True else {}
            if kept:
                out[key] = kept
            continue
        if key not in PORTABLE_OPTIONS or type(value) is not type(defaults[key]):
            continue
        low, high = OPTION_BOUNDS.get(key, (None, None))
        if low is not None and not low <= value <= high:
            continue
        if isinstance(value, str) and len(value) > MAX_LABEL_CHARS:
            continue
        out[key] = value
    return out


def _safe_label_thresholds(value: Any, labels: Any) -> dict[str, float]:
    """The valid entries of an untrusted ``label_thresholds``: label text within :data:`MAX_LABEL_CHARS` (and in
    ``labels`` when given), a probability the library accepts
    (:func:`fewshot.multilabel.options.is_label_threshold`)."""
    from ..multilabel.options import is_label_threshold

    if not isinstance(value, dict):
        return {}
    known = None if labels is None else set(labels)
    return {k: float(v) for k, v in list(value.items())[:MAX_THRESHOLD_LABELS]
            if isinstance(k, str) and 0 < len(k) <= MAX_LABEL_CHARS and (known is None or k in known)
            and is_label_threshold(v)}


def state_options(state: Any) -> dict[str, Any]:
    """Classifier options of a state (see :func:`safe_options`); per-label thresholds only for its labels (a
    label removed since keeps no threshold)."""
    if not isinstance(state, dict):
        return {}
    options = state.get("options")
    labels = labels_of(state_rows(state), True) if isinstance(options, dict) and "label_thresholds" in options else ()
    return safe_options(options, labels)


UNDO_STEPS = 10
"""Label sets kept for *Undo last change* (the last changes; older ones are dropped)."""
UNDO_ROWS = 3 * MAX_EXAMPLES
"""Rows kept for undo in all (a session's state stays bounded with big label sets: fewer steps then)."""


def history_of(state: Any) -> list[dict[str, Any]]:
    """The earlier label sets *Undo* goes back to, oldest first (each ``{"rows", "options"}``, checked like the
    state itself)."""
    history = state.get("history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        return []
    return [_label_set_entry(state_rows(h), state_options(h), state_point(h))
            for h in history[-UNDO_STEPS:] if isinstance(h, dict)]


def _label_set_entry(rows: Rows, options: dict[str, Any], point: dict[str, Any] | None) -> dict[str, Any]:
    """A label set as the state and its undo history keep it: rows, options and, when one was chosen for it, the
    operating point."""
    return {"rows": rows, "options": options, **({"point": point} if point else {})}


def state_point(state: Any) -> dict[str, Any] | None:
    """The operating point kept with a label set (validated, since a browser may send anything): ``{"threshold":
    in-scope score within +-SCORE_BOUND, "label_set": the fingerprint of the label set it was chosen for
    (:func:`label_set_id`, which leaves the point out), "tier": the encoder choice it was chosen with}``; None when
    there is none or it is malformed."""
    point = state.get("point") if isinstance(state, dict) else None
    if not isinstance(point, dict):
        return None
    value, label_set, tier = point.get("threshold"), point.get("label_set"), point.get("tier")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if abs(value) > SCORE_BOUND or not isinstance(label_set, str) or len(label_set) != 64:
        return None
    if tier not in (tiers.FAST, tiers.ACCURATE):
        return None
    return {"threshold": float(value), "label_set": label_set, "tier": tier}


def with_point(state: dict[str, Any], threshold: float | None, tier: str) -> dict[str, Any]:
    """A new state whose operating point is ``threshold`` chosen with the encoder ``tier`` for its current label
    set (None: back to the automatic threshold). Not an undo step: Undo goes back through label sets, each with
    the point chosen for it."""
    new = {k: v for k, v in state.items() if k != "point"} if isinstance(state, dict) else {}
    if threshold is not None:
        new["point"] = {"threshold": float(threshold), "label_set": label_set_id(state), "tier": tier}
    return new


def point_in_use(state: Any, tier: str) -> float | None:
    """The operating point that applies to ``state``'s label set with the encoder ``tier`` (int8 aside), else
    None (the automatic threshold)."""
    point = state_point(state)
    if point and point["label_set"] == label_set_id(state) and point["tier"] == tier:
        return point["threshold"]
    return None


def _bounded(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last :data:`UNDO_STEPS` entries of ``history`` that hold at most :data:`UNDO_ROWS` rows together."""
    kept: list[dict[str, Any]] = []
    rows = 0
    for entry in reversed(history[-UNDO_STEPS:]):
        rows += len(entry["rows"])
        if rows > UNDO_ROWS and kept:
            break
        kept.append(entry)
    return kept[::-1]


def with_rows(state: dict[str, Any], rows: Rows, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new state dict (never mutates ``state``); when the rows or the options change (multi-label mode, a loaded
    zip's options), the previous label set is kept for *Undo* (the last :data:`UNDO_STEPS` of them), with the
    operating point chosen for it. The point stays only while the label set is the one it was chosen for."""
    old, old_options = state_rows(state), state_options(state)
    new: dict[str, Any] = {"rows": [list(r) for r in rows],
                           "options": dict(old_options if options is None else options)}
    history = history_of(state)
    point = state_point(state)
    if old != new["rows"] or old_options != state_options(new):
        history = _bounded([*history, _label_set_entry(old, old_options, point)])
    if history:
        new["history"] = history
    if point and point["label_set"] == label_set_id(new):
        new["point"] = point
    return new


def undo(state: dict[str, Any]) -> dict[str, Any]:
    """The label set before the last change that is still kept; undoing again goes one step further back (it never
    redoes). Refused when nothing is left to undo."""
    history = history_of(state)
    if not history:
        raise FewShotError(f"nothing left to undo (Undo goes back up to {UNDO_STEPS} changes of the label set)")
    last = history[-1]
    new = _label_set_entry(last["rows"], last["options"], last.get("point"))
    if history[:-1]:
        new["history"] = history[:-1]
    return new


def labels_of(rows: Rows, multi: bool = False) -> list[str]:
    """Distinct labels of complete rows, sorted (``multi``: each ``;``-separated label of a cell)."""
    return sorted({lab for r in complete_rows(rows) for lab in cell_labels(r[0], multi)})


def add_choices(labels: list[str], multi: bool = False) -> list[str | tuple[str, str]]:
    """Choices of the pickers that add a text as an example: the labels and, in single-label mode, always
    "none of these" (the unknown label): such examples make the classifier refuse texts like them, the one
    measured remedy for unknowns of the labels' own domain (docs/research/unknown-in-domain.md)."""
    if multi:
        return list(labels)
    return [*(lab for lab in labels if lab != NONE_LABEL), (f'{NONE_LABEL} ("none of these")', NONE_LABEL)]


def counts_of(rows: Rows, multi: bool = False) -> dict[str, int]:
    """Examples per label (``multi``: a text counts once for each of its labels, its rows merged)."""
    out: dict[str, int] = {}
    if multi:
        for labs in example_sets_of(rows).values():
            for label in labs:
                out[label] = out.get(label, 0) + 1
        return dict(sorted(out.items()))
    for label, _ in complete_rows(rows):
        out[label] = out.get(label, 0) + 1
    return dict(sorted(out.items()))


# ---- example label sets ----------------------------------------------------------------------------
def example_sets() -> dict[str, Path]:
    """Display name -> CSV file of the ready label sets shipped in ``fewshot/label_sets``."""
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
    """Rows from a ``text,label`` CSV (column order free; ``Text``, ``sentence,intent`` … read too, as the CLI
    reads them)."""
    return read_examples(path, display_name)[0]


def read_examples(path: str | Path, display_name: str | None = None) -> tuple[Rows, int]:
    """:func:`rows_from_csv`'s rows and how many of the file's examples were cut to :data:`MAX_INPUT_CHARS` (more
    than spaces lost), for the import to say so as Batch does."""
    with upload_errors(path, display_name):
        texts, labels = read_labelled_table(path, hint="Name them text and label in the file's first row")
    cut = sum(txt[MAX_INPUT_CHARS:].strip() != "" for txt in texts)
    return clean_rows([[lab, txt[:MAX_INPUT_CHARS]] for lab, txt in zip(labels, texts)]), cut


def cut_note(count: int) -> str:
    """What the import says of ``count`` examples longer than :data:`MAX_INPUT_CHARS` that it cut."""
    return (f"{count:,} example{'s' if count != 1 else ''} longer than {MAX_INPUT_CHARS:,} characters "
            f"{'were' if count != 1 else 'was'} cut to {'their' if count != 1 else 'its'} first {MAX_INPUT_CHARS:,}")


@contextmanager
def upload_errors(path: str | Path, display_name: str | None = None) -> Iterator[None]:
    """A :class:`FewShotError` raised meanwhile about the upload ``path`` names its plain file name, not its temp
    path, and says what to do in the app about an encoding."""
    try:
        yield
    except FewShotError as exc:
        msg = str(exc).replace(str(path), display_name or Path(path).name)
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
    int8: bool = False
    note: str = ""  # what loading or refitting it dropped (an operating point that no longer applies, a fine-tuning)
    label_set: str = ""  # the label set it was fitted on (:func:`label_set_id`)
    tier: str = tiers.FAST  # the encoder choice it encodes with (int8 aside)
    left_out: int = 0  # examples of the label set the fit left out (multi-label mode: the "none of these" ones)


def state_key(rows: Rows, options: dict[str, Any]) -> str:
    """A content hash of the rows and options (same label set -> same key)."""
    blob = json.dumps([complete_rows(rows), options], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def label_set_id(state: Any) -> str:
    """The fingerprint of a label set as the classifier sees it (complete rows and options, multi-label mode
    included): kept with every result (Classify, Batch, Evaluate) to tell results about an earlier label set."""
    return state_key(complete_rows(state_rows(state)), state_options(state))


def fit_rows(state: Any) -> tuple[Rows, int]:
    """The rows the classifier is fitted on and how many examples are left out of the fit: in multi-label mode the
    "none of these" examples (label ``unknown``; a text no label reaches is answered unknown by itself), which stay
    in the label set. Refuses a label set with fewer than 2 labels to fit."""
    rows, multi = complete_rows(state_rows(state)), is_multi(state)
    left_out = 0
    if multi:
        left_out = counts_of(rows, True).get(NONE_LABEL, 0)
        rows = [[CELL_SEPARATOR.join(rest), text] for cell, text in rows
                if (rest := [lab for lab in cell_labels(cell, True) if lab != NONE_LABEL])]
    have = [lab for lab in labels_of(rows, multi) if not multi or lab != NONE_LABEL]
    if len(have) < 2:
        raise FewShotError("the classifier needs examples for at least 2 labels; "
                           + (f"you have only {have}" if have else "you have none yet")
                           + (f" (examples labelled {NONE_LABEL!r} are not used in multi-label mode)" if left_out
                              else "")
                           + ". Add labels on the Labels tab or load an example set")
    return rows, left_out


def left_out_note(n: int) -> str:
    """What the app says of the examples a multi-label fit leaves out (:func:`fit_rows`)."""
    return (f"{n} example(s) labelled {NONE_LABEL!r} (\"none of these\") are left out in multi-label mode, where a "
            "text no label reaches is answered unknown by itself; they are used again when multi-label is off")


def fitted_classifier(state: dict[str, Any], cache: Fitted | None, progress: ProgressFn | None = None,
                      int8: bool = False, tier: str = tiers.FAST) -> Fitted:
    """The session's classifier for ``state``: reused when the label set and encoder did not change, else refitted.

    ``int8``: the int8 encoder (see :mod:`fewshot.encoders.int8`); ``tier``: the encoder choice
    (:mod:`fewshot.app.tiers`); switching either refits, since the vectors differ. A refit of the same label set
    keeps the unknown threshold chosen for it (on Evaluate, or saved in a loaded zip) when only int8 changed (the
    same encoder model: the scores are on the same scale); what it cannot keep (a threshold chosen with the other
    encoder, a fine-tuning) is said in the new classifier's ``note``. Waits for the shared encoder when it is still
    being prepared (:mod:`fewshot.app.warmup`).
    """
    from ..classifier import FewShotClassifier

    label_set = label_set_id(state)
    key = fitted_key(label_set, int8, tier)
    point = point_in_use(state, tier)  # chosen on Evaluate, or saved in a loaded zip (multi-label too)
    if isinstance(cache, Fitted) and cache.key == key:
        if cache.clf.config.score_threshold != point:  # the point kept with the label set decides (Undo, reload)
            cache.clf.set_params(score_threshold=point)
        return cache
    rows, left_out = fit_rows(state)
    clf = FewShotClassifier(encoder=shared_encoder(int8, tier), int8=int8, **fit_options(state))
    clf.fit([r[1] for r in rows], [r[0] for r in rows], progress=progress)
    if point is not None:
        clf.set_params(score_threshold=point)
    note = _carried(cache, state, label_set, tier, int8)
    return Fitted(key, clf, int8, note=note, label_set=label_set, tier=tier, left_out=left_out)


def fitted_key(label_set: str, int8: bool, tier: str) -> str:
    """What a fitted classifier is reused for: its label set (:func:`label_set_id`) and encoder setting."""
    return label_set + ("/int8" if int8 else "") + ("" if tier == tiers.FAST else f"/{tier}")


SINGLE_LABEL_OPTIONS = ("rule", "adapt")
"""Options of a single-label classifier that multi-label mode does not take (a loaded zip may carry them): kept in
the state for when the switch goes off, left out of a multi-label fit."""


def fit_options(state: dict[str, Any]) -> dict[str, Any]:
    """The classifier options of ``state`` for a fit: in multi-label mode without :data:`SINGLE_LABEL_OPTIONS`."""
    options = dict(state_options(state))
    if options.get("multi_label"):
        for key in SINGLE_LABEL_OPTIONS:
            options.pop(key, None)
    return options


def _kind(tier: str, int8: bool) -> str:
    return f"{tier}{' int8' if int8 else ''}"


def _carried(cache: Any, state: Any, label_set: str, tier: str, int8: bool) -> str:
    """What a refit of the same label set with another encoder setting cannot keep ("" when nothing): an operating
    point chosen with the other encoder model (it applies again back on that one; int8 alone keeps it), a
    fine-tuning. The point itself lives in the state (:func:`state_point`) and is applied by
    :func:`fitted_classifier`."""
    if not isinstance(cache, Fitted) or cache.label_set != label_set:
        return ""
    lost = []
    point = state_point(state)
    if point and point["label_set"] == label_set and point["tier"] != tier and cache.tier != tier:
        lost.append(f"the unknown threshold {point['threshold']:.2f} was chosen with the {point['tier']} encoder, so "
                    f"with the {tier} one the automatic threshold applies (back on the {point['tier']} encoder, it "
                    "applies again)")
    if getattr(cache.clf, "finetuned_", None) is not None:
        lost.append(f"the fine-tuning was made with the {_kind(cache.tier, cache.int8)} encoder, so with the "
                    f"{_kind(tier, int8)} one the classifier is instant again (fine-tune again to adapt it)")
    return "; ".join(lost)


@dataclass(frozen=True)
class Unknown:
    """How the app answers 'unknown' for one request (see :func:`unknown_rule`); never stored in a classifier."""

    mode: str  # "auto": in-scope score below the automatic threshold; "labels": multi-label, no label reaches
    # its own threshold (the classifier's auto_unknown); "confidence"; "off"
    threshold: float | None = None  # "auto": score units (the head's top logit); "confidence": 0-1; "labels": None
    note: str = ""  # why "auto" was asked for but is not applied

    @property
    def options(self) -> dict[str, Any]:
        """The classifier's unknown options for this rule, passed per call (``predict_details(**options)``)."""
        return {"min_confidence": self.threshold if self.mode == "confidence" else None,
                "auto_unknown": self.mode in ("auto", "labels"), "score_threshold": None}


def is_multi_classifier(clf: Any) -> bool:
    """Whether ``clf`` is a multi-label classifier (``multi_label=True``)."""
    return bool(getattr(getattr(clf, "config", None), "multi_label", False))


def thresholds_text(thresholds: dict[str, float]) -> str:
    """Per-label thresholds in a few words: ``40%`` when they are all one value, else their range."""
    values = sorted(set(round(v, 4) for v in thresholds.values()))
    if not values:
        return "none"
    return f"{values[0]:.0%}" if len(values) == 1 else f"{values[0]:.0%} to {values[-1]:.0%} by label"


def auto_threshold(clf: FewShotClassifier) -> tuple[float | None, str]:
    """The classifier's automatic threshold (cached per label set), or None and the reason it has none."""
    try:
        return float(clf.auto_threshold_), ""
    except FewShotError as exc:
        return None, str(exc).replace("the automatic unknown threshold (auto_unknown=True)", "the automatic unknown")


def unknown_rule(clf: FewShotClassifier, auto: Any, threshold: Any) -> Unknown:
    """The user's unknown rule for one request: automatic (from the examples), a confidence floor, or none.

    ``auto`` true: the automatic in-scope-score threshold, the slider is ignored; when the label set is too
    small for the cross-validated threshold (no label with 2 examples) nothing is answered unknown and the
    note says why. ``auto`` false: ``threshold`` is a confidence in [0, 1]; 0 or None: never unknown.
    """
    if auto is not None and not isinstance(auto, (bool, int, float)):
        raise FewShotError(f"auto_unknown must be true or false, got {auto!r:.40}")
    if auto and is_multi_classifier(clf):
        # multi-label: every label has its own threshold (clf.label_thresholds_); the classifier's automatic
        # unknown answers no label when none reaches its own, as a saved classifier with auto_unknown does
        return Unknown("labels")
    if auto:
        value, note = auto_threshold(clf)
        return Unknown("auto", value) if value is not None else Unknown("off", None, note)
    try:
        value = float(threshold or 0.0)
    except (TypeError, ValueError) as exc:
        raise FewShotError(f"the threshold must be a number between 0 and 1, got {threshold!r:.40}") from exc
    if not 0.0 <= value <= 1.0:
        raise FewShotError(f"the threshold must be between 0 and 1, got {value}")
    return Unknown("confidence", value) if value > 0 else Unknown("off")


def predict_text(clf: FewShotClassifier, text: str, rule: Unknown) -> Prediction:
    """One text's answer under ``rule``: the label (or unknown), the top 5 labels and the 5 closest examples."""
    return clf.predict_details([text[:MAX_INPUT_CHARS]], top=5, n_matches=5, **rule.options)[0]


def findings(rows: Rows, *, embeddings: bool = True, multi: bool = False) -> list[Finding]:
    """Diagnostics of the complete rows; ``embeddings``: also the checks that need the shared fp32 encoder
    (examples closer to another label, from its cached vectors; the language), which wait for that encoder.
    ``multi`` (multi-label mode): the merged examples, by :func:`fewshot.diagnostics.diagnose_multilabel`."""
    english = english_encoder_name(shared_encoder()) if embeddings else None
    if multi:  # the "none of these" examples are left out of a multi-label fit, so out of its checks too
        sets = {t: kept for t, labs in example_sets_of(rows).items()
                if (kept := [lab for lab in labs if lab != NONE_LABEL])}
        texts = list(sets)
        vectors = shared_encoder().encode(texts) if texts and embeddings else None
        return diagnose_multilabel(texts, list(sets.values()), vectors, english_encoder=english)
    rows = complete_rows(rows)
    texts, labels = [r[1] for r in rows], [r[0] for r in rows]
    vectors = shared_encoder().encode(texts) if texts and embeddings else None
    return diagnose(texts, labels, vectors, english_encoder=english)


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


DOWNLOAD_ENCODING = "utf-8-sig"
"""The app's CSV downloads start with a byte-order mark: without one, Excel opens a UTF-8 CSV as its local code
page and shows "café" as "cafÃ©"; fewshot, pandas and spreadsheets read it either way."""


def write_download(df: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    """``df`` as a CSV download: formula cells neutralised, UTF-8 with a byte-order mark, delimited by ``sep``."""
    neutralize_formulas(df).to_csv(path, index=False, encoding=DOWNLOAD_ENCODING, sep=sep)
    return path


def export_csv(rows: Rows) -> Path:
    """The label set as a ``text,label`` CSV (formula cells neutralised)."""
    rows = complete_rows(rows)
    if not rows:
        raise FewShotError("the label set is empty; nothing to export")
    df = pd.DataFrame({"text": [r[1] for r in rows], "label": [r[0] for r in rows]})
    return write_download(df, out_dir() / "label_set.csv")


def save_zip(fitted: Fitted) -> Path:
    """The classifier as a zip of the folder :meth:`FewShotClassifier.save` writes, less a multi-label classifier's
    fitted per-label model: an uploaded zip's arrays are not trusted, and loading fits it again from the examples
    (deterministically: the same answers)."""
    work = out_dir()
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
    meta["config"] = {"model": None} | safe_options(meta["config"], _saved_labels(path.parent))
    path.write_text(json.dumps(meta), encoding="utf-8")


def _saved_labels(folder: Path) -> list[str] | None:
    """The labels of a saved folder's ``examples.csv`` (each ``;``-separated label of a cell), None when it has no
    label column (the library's own error then says so)."""
    from ..persist import EXAMPLES_FILE

    df = pd.read_csv(folder / EXAMPLES_FILE, dtype=str, keep_default_na=False)
    if "label" not in df.columns:
        return None
    return sorted({lab for cell in df["label"] for lab in split_label_cell(cell)})


def load_zip(path: str | Path) -> tuple[dict[str, Any], Fitted]:
    """A state and fitted classifier from a zip written by :func:`save_zip` (or a zipped saved folder)."""
    from ..classifier import FewShotClassifier
    from ..persist import CONFIG_FILE, read_zip

    if not zipfile.is_zipfile(path):
        raise FewShotError(f"{Path(path).name} is not a zip file; save a classifier with 'Save classifier'")
    work = out_dir()
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
    options = {k: v for k, v in asdict(clf.config).items() if k in PORTABLE_OPTIONS}
    defaults = asdict(ClassifierConfig())
    options = {k: v for k, v in options.items() if v != defaults[k]}
    cells = examples["label"]
    if options.get("multi_label"):  # the library stores "a;b"; the app shows "a; b"
        cells = [CELL_SEPARATOR.join(cell_labels(str(c), True)) for c in cells]
    rows = clean_rows([[lab, text] for lab, text in zip(cells, examples["text"])])
    state: dict[str, Any] = {"rows": rows, "options": options}
    label_set = label_set_id(state)  # as fitted_classifier and with_point derive it
    if clf.config.score_threshold is not None:  # kept with the label set: it applies again after a reload or Undo
        state = with_point(state, clf.config.score_threshold, tier)
    return state, Fitted(fitted_key(label_set, int8, tier), clf, int8=int8, note=note, label_set=label_set, tier=tier)


def saved_operating_point(config_path: Path) -> tuple[float | None, str | None]:
    """The unknown threshold a saved classifier's ``config.json`` carries (``score_threshold``: its chosen
    operating point, kept when finite and within :data:`SCORE_BOUND`, else None) and the encoder model it was
    chosen with (None when not recorded)."""
    meta = json.loads(config_path.read_text(encoding="utf-8"))
    config = meta.get("config") if isinstance(meta, dict) else None
    value = config.get("score_threshold") if isinstance(config, dict) else None
    record = meta.get("encoder") if isinstance(meta, dict) else None
    model = record.get("model") if isinstance(record, dict) and isinstance(record.get("model"), str) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, model
    if not math.isfinite(value) or abs(value) > SCORE_BOUND:
        return None, model
    return float(value), model


def saved_encoder_kind(config_path: Path) -> tuple[bool, str]:
    """``(int8, tier)`` of the encoder a saved classifier's ``config.json`` records: the accurate tier when it
    names that tier's model and this app can load it, else the fast one."""
    record = json.loads(config_path.read_text(encoding="utf-8")).get("encoder")
    record = record if isinstance(record, dict) else {}
    int8 = bool(record.get("int8", record.get("quantized", False)))
    accurate = record.get("model") == tiers.model_for(tiers.ACCURATE) and not tiers.problem(tiers.ACCURATE)
    return int8, tiers.ACCURATE if accurate else tiers.FAST


# ---- batch and evaluation --------------------------------------------------------------------------
def text_column(df: pd.DataFrame, chosen: str | None = None, exclude: str | None = None) -> str:
    """``chosen`` when given (a name the file lacks is refused where it is read), else the column named like text,
    else the one whose cells look most like text (:func:`fewshot.io.tables.likely_text_column`: not an ID column;
    never ``exclude``, the label column), else the first: what the dropdown shows once an upload is read, so a click
    that comes before that gets it."""
    columns = [str(c) for c in df.columns]
    if chosen:
        return str(chosen)
    return guess_column(columns, TEXT_COLUMNS) or _likely_text(df, exclude) or columns[0]


def _likely_text(df: pd.DataFrame, exclude: str | None) -> str | None:
    return likely_text_column(df.drop(columns=[exclude]) if exclude in df.columns else df)


def text_column_note(df: pd.DataFrame, name: str, exclude: str | None = None) -> str | None:
    """What to tell the user when no column of the upload ``name`` (but ``exclude``, the label column) is named
    like text nor holds text (numbers, dates, empty cells): the preselected column is a guess they must correct."""
    if guess_column([str(c) for c in df.columns], TEXT_COLUMNS) or _likely_text(df, exclude):
        return None
    return (f"no column of {name} looks like text (its first rows hold numbers, dates or empty cells): choose the "
            "column that holds the texts")


HEADER_HINT = " (if that first row is data, add a header row above it, such as text,label)"
"""The command line's hint (:func:`fewshot.io.tables.find_column`) for a file whose header reads like data, where the
app asks for a column."""


def header_hint(columns: list[str]) -> str:
    """:data:`HEADER_HINT` when the header ``columns`` reads like a row of data (the command line's rule,
    :func:`fewshot.io.tables.header_looks_like_data`), else ""."""
    return HEADER_HINT if header_looks_like_data(columns) else ""


def _named_like_a_cell(df: pd.DataFrame, name: str) -> bool:
    """Whether the column name ``name`` of ``df`` looks like one of its own cells: a number, or a value the column
    holds in its first rows (a label such as ``refund`` read as the name of the label column)."""
    key = name.strip()
    try:
        float(key)
        return True
    except ValueError:
        pass
    return bool(key) and key in set(df[name].head(TEXT_SAMPLE_ROWS).astype(str).str.strip())


def headerless_note(df: pd.DataFrame, name: str, evaluated: bool = False) -> str | None:
    """What to tell the user when the upload ``name`` seems to have no header line, so that its first row was
    taken as the column names and is not classified (``evaluated``: not evaluated). No column is named like text
    and a name reads like a text (:func:`fewshot.io.tables.header_looks_like_data`, the command line's rule); with
    several columns another name also reads like one of its own cells (a number, a label the column holds), since
    a column of texts may well be named in a few words (``Customer Message (as received)``). Said, not guessed away
    by reading the file as headerless: the file then gives the same rows here as on the command line."""
    columns = [str(c) for c in df.columns]
    if guess_column(columns, TEXT_COLUMNS) or not header_looks_like_data(columns):
        return None
    done = "evaluated" if evaluated else "classified"
    if len(columns) == 1:
        return (f"the first line of {name}, {_short(columns[0])!r}, is read as the column name, so it is not {done}; "
                "if it is a text, add a header line such as text above it")
    if not any(_named_like_a_cell(df, c) for c in columns if not header_looks_like_data([c])):
        return None
    names = ", ".join(repr(_short(c, 50)) for c in columns[:3]) + (", …" if len(columns) > 3 else "")
    header = "such as text,label" if evaluated else "text for the column of texts"
    return (f"the first line of {name} ({names}) is read as the column names, so it is not {done}; if it is a row "
            f"of data, add a header line above it that names the columns ({header})")


def _short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def foreign_labels_note(df: pd.DataFrame, label_col: str, state: Any, name: str) -> str | None:
    """What to tell the user before evaluating the upload ``name`` when none of the true labels in ``label_col``
    (rows labelled ``unknown`` aside) is a label of the label set: every row would count as an error, most likely
    because the file names the labels otherwise. None when some label is shared (or there is nothing to compare)."""
    if label_col not in df.columns:
        return None
    multi = is_multi(state)
    gold = sorted({lab for cell in df[label_col] for lab in cell_labels(label_name(str(cell)), multi)} - {NONE_LABEL})
    mine = [lab for lab in labels_of(state_rows(state), multi) if lab != NONE_LABEL]
    if not gold or not mine or set(gold) & set(mine):
        return None

    def few(labels: list[str]) -> str:
        return ", ".join(repr(lab) for lab in labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")

    return (f"none of the labels of {name} is a label of your label set (the file has {few(gold)}; yours are "
            f"{few(mine)}): every row will count as an error; rename the labels in the file or in your label set")


def label_column(columns: list[str], chosen: str | None = None) -> str | None:
    """``chosen`` when given, else the likely label column (None: no column looks like one)."""
    return str(chosen) if chosen else guess_column(columns, LABEL_COLUMNS)


def read_upload(path: str | Path, display_name: str | None = None) -> pd.DataFrame:
    """An uploaded CSV as strings, with a row limit."""
    with upload_errors(path, display_name):
        df = read_table(path, [])
    if len(df) > MAX_ROWS:
        raise FewShotError(f"{display_name or Path(path).name} has {len(df)} rows; this app classifies at most "
                           f"{MAX_ROWS} per file (use the `fewshot classify` CLI for bigger files)")
    return df


PASTED_COLUMN = "text"


def pasted_rows(pasted: str) -> pd.DataFrame:
    """Texts pasted one per line (a spreadsheet column copied, say) as a one-column frame; blank lines dropped,
    with the same row limit as a file."""
    lines = [line.strip() for line in pasted.splitlines()]
    df = pd.DataFrame({PASTED_COLUMN: [line for line in lines if line]}, dtype=str)
    if len(df) > MAX_ROWS:
        raise FewShotError(f"{len(df):,} texts were pasted; this app classifies at most {MAX_ROWS:,} at once (the "
                           "`fewshot classify` command line takes a CSV of any size)")
    return df


def classify_frame(clf: FewShotClassifier, df: pd.DataFrame, column: str, rule: Unknown,
                   progress: ProgressFn | None = None, *, batch_aware: bool = False) -> tuple[pd.DataFrame, int]:
    """``df`` in the one labelled-output format (:func:`fewshot.io.output.label_frame`: label, confidence,
    top-3, in-scope score; blank texts kept unlabelled), each text cut to :data:`MAX_INPUT_CHARS` and
    ``unknown`` answered by ``rule`` (``batch_aware``: the rows' scores read together). Returns the labelled
    frame and the number of blank rows.
    """
    out = label_frame(clf, df, column, progress=progress, max_chars=MAX_INPUT_CHARS, batch_aware=batch_aware,
                      **rule.options)
    blank = df[column].astype(str).str.slice(0, MAX_INPUT_CHARS).str.strip() == ""
    return out, int(blank.sum())


def added_columns(df: pd.DataFrame, multi: bool = False) -> tuple[str, ...]:
    """Names of the columns :func:`classify_frame` adds to ``df`` (``predicted_`` prefixed on a clash; ``multi``:
    a multi-label classifier's, whose first is ``labels``)."""
    return output_names([str(c) for c in df.columns], multi)


def upload_delimiter(path: str | Path) -> str:
    """An uploaded CSV's delimiter (``,`` for a workbook): its labelled download is written with the same one, so
    that a spreadsheet set to ``;`` (where the decimal mark is a comma) opens it in columns as it opened the upload."""
    return csv_options(sniff(path))["sep"]  # the command line's rule (fewshot.io.output.csv_options)


def write_labelled(df: pd.DataFrame, source_name: str, sep: str = ",") -> Path:
    """The labelled CSV, formula cells neutralised, named after the upload, delimited by ``sep``."""
    return write_download(df, out_dir() / f"{safe_stem(source_name, 'texts')}_labelled.csv", sep)
