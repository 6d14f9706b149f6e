"""The session's label set as plain JSON: its rows and options, the operating point kept with it, its undo history.

A state is ``{"rows": [[label, text], ...], "options": {...}}`` so that it can live in the browser
(``gr.BrowserState``) and in a per-session ``gr.State``; every function here returns a new state and never changes
its argument, and what a browser sends is checked (types, sizes). No Gradio and no torch here.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, fields
from typing import Any

import numpy as np
import pandas as pd

from ..config import ClassifierConfig
from ..errors import FewShotError
from ..multilabel.table import LABEL_SEPARATOR, split_label_cell
from ..text import label_name
from . import tiers
from .settings import env_int

NONE_LABEL = ClassifierConfig.unknown_label  # examples under this label are "none of these" examples
CELL_SEPARATOR = LABEL_SEPARATOR + " "
"""How the app writes a multi-label example's labels in one cell (``billing; bug``); read back by the library's
``;`` format (:mod:`fewshot.multilabel.table`)."""

MAX_EXAMPLES = env_int("FEWSHOT_MAX_EXAMPLES", 5000)
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


def example_sets_of(rows: Rows) -> dict[str, list[str]]:
    """Multi-label examples: each distinct text with the union of the labels of its rows (the library's rule)."""
    out: dict[str, dict[str, None]] = {}
    for cell, text in complete_rows(rows):
        out.setdefault(text.strip(), {}).update(dict.fromkeys(cell_labels(cell, True)))
    return {t: list(labs) for t, labs in out.items()}


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
    value, label_set, tier = bounded_score(point.get("threshold")), point.get("label_set"), point.get("tier")
    if value is None or not isinstance(label_set, str) or len(label_set) != 64:
        return None
    if tier not in (tiers.FAST, tiers.ACCURATE):
        return None
    return {"threshold": value, "label_set": label_set, "tier": tier}


def bounded_score(value: Any) -> float | None:
    """``value`` as an in-scope score threshold when it is a finite number within +-:data:`SCORE_BOUND` (not a
    bool), else None: what a threshold read from a browser's copy or a saved zip must be."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) if abs(value) <= SCORE_BOUND else None


def with_point(state: dict[str, Any], threshold: float | None, tier: str) -> dict[str, Any]:
    """A new state whose operating point is ``threshold`` chosen with the encoder ``tier`` for its current label
    set (None: back to the automatic threshold). Not an undo step: Undo goes back through label sets, each with
    the point chosen for it."""
    new = {k: v for k, v in state.items() if k != "point"} if isinstance(state, dict) else {}
    if threshold is not None:
        new["point"] = {"threshold": float(threshold), "label_set": label_set_id(state), "tier": tier}
    return new


def point_in_use(state: Any, tier: str, label_set: str | None = None) -> float | None:
    """The operating point that applies to ``state``'s label set with the encoder ``tier`` (int8 aside), else
    None (the automatic threshold). ``label_set``: that label set's :func:`label_set_id`, when the caller has it
    (it hashes every example)."""
    point = state_point(state)
    if point and point["label_set"] == (label_set or label_set_id(state)) and point["tier"] == tier:
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


def state_key(rows: Rows, options: dict[str, Any]) -> str:
    """A content hash of the rows and options (same label set -> same key)."""
    blob = json.dumps([complete_rows(rows), options], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def label_set_id(state: Any) -> str:
    """The fingerprint of a label set as the classifier sees it (complete rows and options, multi-label mode
    included): kept with every result (Classify, Batch, Evaluate) to tell results about an earlier label set."""
    return state_key(complete_rows(state_rows(state)), state_options(state))
