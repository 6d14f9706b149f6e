"""Review the last batch: its rows with filters, lowest confidence first, and turning a row into an example.

The labelling tools' core loop: after Batch's *Classify*, browse the answers (only ``unknown``, confidence below
a value, one predicted label), look at a row's closest examples, and add it to the label set with the right
label ("add as example of …") or its predicted one ("this is right"). The batch's rows live in the session
(a ``gr.State``) as plain JSON, capped at :data:`MAX_REVIEW_ROWS` (the least confident ones kept); every
function returns a new value and never changes its arguments. No Gradio and no torch here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import FewShotError
from ..io.tables import row_number
from ..uncovered import label_worth, pool_rows
from . import label_edits as edits
from . import state as st
from .settings import env_int

MAX_REVIEW_ROWS = env_int("FEWSHOT_MAX_REVIEW_ROWS", 5000)
"""Batch rows kept for review per session (``FEWSHOT_MAX_REVIEW_ROWS``): the least confident ones."""
TABLE_HEADERS = ["row", "predicted", "confidence", "text"]
"""Columns of the review table: the CSV's row number (as a spreadsheet numbers it: 1 = the header; pasted texts:
their position among the non-blank lines), the answer, its
confidence and the text (last, so the decisive columns stay visible on a narrow screen)."""
ALL_LABELS = "(all labels)"


def empty_review() -> dict[str, Any]:
    """No batch yet."""
    return {"rows": [], "view": [], "total": 0, "unknown_label": st.NONE_LABEL}


def from_batch(out: pd.DataFrame, column: str, names: tuple[str, ...], unknown_label: str, *,
               header: bool = True, multi: bool = False) -> dict[str, Any]:
    """The review rows of a labelled batch (:func:`fewshot.app.session_classifier.classify_frame`'s frame, whose added
    columns are ``names``: label, confidence, top 3, in-scope score); blank texts left out. ``header``: the rows
    came from a file with a header line (numbered as a spreadsheet shows it), not pasted (numbered from 1).
    ``multi``: a multi-label batch (a row's answer names its labels joined with ``;``)."""
    label_col, conf_col, _, score_col = names
    rows = []
    for i, (text, label, conf, score) in enumerate(zip(out[column].astype(str), out[label_col], out[conf_col],
                                                       out[score_col])):
        if not label:
            continue
        rows.append({"row": row_number(i) if header else i + 1, "text": text[:st.MAX_INPUT_CHARS], "label": str(label),
                     "confidence": float(conf), "score": float(score), "added": ""})
    rows.sort(key=lambda r: (r["confidence"], r["row"]))
    return {"rows": rows[:MAX_REVIEW_ROWS], "view": [], "total": len(rows), "unknown_label": unknown_label,
            "multi": bool(multi)}


def _valid(review: Any) -> dict[str, Any]:
    if not isinstance(review, dict) or not isinstance(review.get("rows"), list):
        return empty_review()
    return review


def row_labels(review: dict[str, Any], row: dict[str, Any]) -> list[str]:
    """The labels a review row was answered (multi-label: each of its ``;``-joined labels)."""
    return st.cell_labels(row["label"], bool(review.get("multi")))


def labels_in(review: Any) -> list[str]:
    """The predicted labels of the batch, for the label filter (multi-label: each label once, not their
    combinations)."""
    review = _valid(review)
    return sorted({lab for r in review["rows"] for lab in row_labels(review, r)})


def filter_rows(review: Any, unknown_only: Any = False, below: Any = 1.0,
                label: Any = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """The rows that pass the filters, lowest confidence first, as a table; the review keeps this view
    (its row positions are what :func:`add_row` takes).

    ``unknown_only``: only rows answered unknown; ``below``: only rows whose confidence is below this value
    (1 or None: all); ``label``: only rows predicted as this label, among others in multi-label mode (None, "" or
    ``(all labels)``: all).
    """
    review = _valid(review)
    if not review["rows"]:
        raise FewShotError("there is no batch to review yet: classify a CSV on the Batch tab first")
    try:
        limit = 1.0 if below is None or below == "" else float(below)
    except (TypeError, ValueError) as exc:
        raise FewShotError(f"'confidence below' must be a number between 0 and 1, got {below!r:.40}") from exc
    if not 0.0 <= limit <= 1.0:
        raise FewShotError(f"'confidence below' must be between 0 and 1, got {limit}")
    wanted = None if label in (None, "", ALL_LABELS) else str(label)
    unknown = review["unknown_label"]
    view = [i for i, r in enumerate(review["rows"])
            if (not unknown_only or r["label"] == unknown)
            and (limit >= 1.0 or r["confidence"] < limit)
            and (wanted is None or wanted in row_labels(review, r))]
    table = pd.DataFrame([_table_row(review["rows"][i]) for i in view], columns=TABLE_HEADERS)
    return {**review, "view": view}, table


def _table_row(row: dict[str, Any]) -> list[Any]:
    label = row["label"] + (f"  → added as {row['added']}" if row.get("added") else "")
    return [row["row"], label, round(row["confidence"], 3), row["text"]]


def picked(review: Any, index: Any) -> dict[str, Any]:
    """The row at position ``index`` of the review table last shown."""
    review = _valid(review)
    view = review.get("view") or []
    try:
        position = int(index)
    except (TypeError, ValueError) as exc:
        raise FewShotError(f"the row must be a number (its position in the review table), got {index!r:.40}") from exc
    if not view:
        raise FewShotError("the review table is empty: show the batch's rows first (adjust the filters)")
    if not 0 <= position < len(view):
        raise FewShotError(f"row {position} is not in the review table: it has {len(view)} row(s), 0 to {len(view) - 1}")
    return dict(review["rows"][view[position]])


def add_row(state: dict[str, Any], review: Any, index: Any, label: Any = None
            ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Add the review row at ``index`` as an example of ``label`` (None or "": its predicted label, "this is
    right"). Returns the new label-set state, the review (the row marked as added) and the label used."""
    review = _valid(review)
    row = picked(review, index)
    chosen = str(label or "").strip()
    if not chosen:
        if row["label"] == review["unknown_label"]:
            raise FewShotError("this row was answered unknown: choose the label it belongs to")
        chosen = row["label"]
    chosen = st.check_label(chosen)
    new_state, review = _added(state, review, [review["view"][int(index)]], chosen)
    return new_state, review, chosen


def _added(state: dict[str, Any], review: dict[str, Any], positions: list[int], label: str
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The label set with the review rows at ``positions`` added as examples of ``label`` (whitespace
    collapsed, one example per distinct text), and the review with those rows marked as added."""
    rows = [dict(r) for r in review["rows"]]
    new_state, _ = edits.add_examples(state, label, "\n".join(st.example_key(rows[i]["text"]) for i in positions))
    for i in positions:
        rows[i]["added"] = label
    return new_state, {**review, "rows": rows}


def _by_text(review: dict[str, Any], positions: list[int]) -> dict[str, list[int]]:
    """``positions`` grouped by their text (spacing aside), in order of first appearance: a sentence repeated in
    the batch is one text."""
    out: dict[str, list[int]] = {}
    for i in positions:
        out.setdefault(st.example_key(review["rows"][i]["text"]), []).append(i)
    return out


# ---- groups no label covers (fewshot.uncovered) -----------------------------------------------------
GROUP_HEADERS = ["group", "texts", "answered", "most typical texts"]
"""Columns of the groups table: the group's number (1 = the largest), how many texts, what they were answered
(``unknown 3 · billing 1``) and its first texts."""
TYPICAL_SHOWN = 3


def group_pool(review: Any) -> tuple[list[int], list[str]]:
    """The review rows to group (positions in the review's rows, their texts): those answered unknown and the
    least in-scope others, as :func:`fewshot.uncovered.pool_rows` picks them."""
    review = _valid(review)
    if not review["rows"]:
        raise FewShotError("there is no batch to review yet: classify a CSV on the Batch tab first")
    unknown = np.array([r["label"] == review["unknown_label"] for r in review["rows"]], dtype=bool)
    if not unknown.any():
        raise FewShotError("no row of the batch was answered unknown, so there is nothing to group")
    rows = pool_rows(unknown, np.array([r["score"] for r in review["rows"]], dtype=np.float64)).tolist()
    return rows, [review["rows"][i]["text"] for i in rows]


def with_groups(review: Any, rows: list[int], groups: list[Any]) -> tuple[dict[str, Any], pd.DataFrame]:
    """The review with ``groups`` (positions in ``rows``, as :func:`fewshot.uncovered.group_vectors` returns
    them) kept as review-row positions, and the groups table."""
    review = _valid(review)
    kept = [[rows[int(i)] for i in g] for g in groups]

    def answered(group: list[int]) -> str:
        counts = pd.Series([review["rows"][i]["label"] for i in group]).value_counts()
        return " · ".join(f"{label} {n}" for label, n in counts.items())

    def typical(group: list[int]) -> str:  # its first distinct texts; a repeated one counted once, with how often
        shown = list(_by_text(review, group).items())[:TYPICAL_SHOWN]
        return " · ".join(text + (f" (×{len(at)})" if len(at) > 1 else "") for text, at in shown)

    table = pd.DataFrame([[n, len(g), answered(g), typical(g)] for n, g in enumerate(kept, start=1)],
                         columns=GROUP_HEADERS)
    return {**review, "groups": kept}, table


def add_group_texts(state: dict[str, Any], review: Any, group: Any, label: Any
                    ) -> tuple[dict[str, Any], dict[str, Any], str, list[str], list[str]]:
    """Add the most typical texts of group number ``group`` (1 = the first row of the groups table), a label's
    worth (:func:`fewshot.uncovered.label_worth`) of distinct texts that are not yet examples of ``label`` (a new
    label's name, an existing one, or the unknown label, "none of these"), most typical first. A sentence the batch
    repeats counts once; rows already added are skipped, and the group's rows whose text already is an example of
    ``label`` are marked added, so that the next call gives the next texts. Returns the new label-set state, the
    review (its rows marked), the label, the texts added and the group's texts that already were examples."""
    review = _valid(review)
    groups = review.get("groups") or []
    if not groups:
        raise FewShotError("there are no groups yet: click 'Find groups' after classifying a CSV")
    try:
        number = int(group)
    except (TypeError, ValueError) as exc:
        raise FewShotError(f"choose a group (a number from 1 to {len(groups)}), got {group!r:.40}") from exc
    if not 1 <= number <= len(groups):
        raise FewShotError(f"group {number} does not exist: there are {len(groups)} group(s), 1 to {len(groups)}")
    chosen = str(label or "").strip()
    if not chosen:
        raise FewShotError("choose the label the group's texts belong to: an existing one, a new name, or "
                           f'{review["unknown_label"]} ("none of these")')
    chosen = st.check_label(chosen)
    todo = _by_text(review, [i for i in groups[number - 1] if not review["rows"][i].get("added")])
    if not todo:
        raise FewShotError(f"every text of group {number} is already in the label set")
    rows = st.state_rows(state)
    have = {st.example_key(text) for cell, text in st.complete_rows(rows) if cell == chosen}
    already = [text for text in todo if text in have]
    counts = st.counts_of(rows, st.is_multi(state))
    new = [text for text in todo if text not in have][:label_worth(
        [n for lab, n in counts.items() if lab != review["unknown_label"]])]
    positions = [i for text in already + new for i in todo[text]]
    if new:
        state, review = _added(state, review, positions, chosen)
    else:  # nothing new: the rows are only marked, the label set stays as it was
        marked = [dict(r) | ({"added": chosen} if i in positions else {}) for i, r in enumerate(review["rows"])]
        review = {**review, "rows": marked}
    return state, review, chosen, new, already


def texts_left(review: Any, group: Any) -> int:
    """How many distinct texts of group number ``group`` are not added yet (0 when there is no such group)."""
    review = _valid(review)
    groups = review.get("groups") or []
    try:
        members = groups[int(group) - 1] if int(group) >= 1 else []
    except (TypeError, ValueError, IndexError):
        return 0
    return len(_by_text(review, [i for i in members if not review["rows"][i].get("added")]))
