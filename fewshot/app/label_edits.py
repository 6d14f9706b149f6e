"""The Labels tab's edits of a label set: add examples, remove or rename a label, switch multi-label mode.

Each returns a new state (:mod:`fewshot.app.state`) with the old label set kept for *Undo*; a refused edit raises
:class:`~fewshot.FewShotError` and changes nothing. No Gradio and no torch here.
"""

from __future__ import annotations

from typing import Any

from ..errors import FewShotError
from ..multilabel.table import LABEL_SEPARATOR
from . import state as st


def set_multi_label(state: dict[str, Any], on: Any) -> dict[str, Any]:
    """A new state in multi-label mode (``on``) or single-label mode; the rows are kept.

    Single-label mode refuses a label set whose examples carry several labels (a cell ``a; b`` or a text repeated
    under two labels): the user's rows are never rewritten behind their back.
    """
    if not isinstance(on, (bool, int, float)):
        raise FewShotError(f"multi_label must be true or false, got {on!r:.40}")
    rows, options = st.state_rows(state), dict(st.state_options(state))
    if on:
        options["multi_label"] = True
        return st.with_rows(state, rows, options)
    several = sorted({r[1] for r in st.complete_rows(rows) if len(st.cell_labels(r[0], True)) > 1}
                     | {t for t, labs in st.example_sets_of(rows).items() if len(labs) > 1})
    if several:
        first = several[0] if len(several[0]) <= 60 else several[0][:59] + "…"
        raise FewShotError(f"{len(several)} example(s) carry several labels (e.g. {first!r}); give each one label "
                           "before switching multi-label off")
    options.pop("multi_label", None)
    return st.with_rows(state, rows, options)


def add_examples(state: dict[str, Any], label: str, lines: str) -> tuple[dict[str, Any], list[str]]:
    """A new state with one example per non-blank line of ``lines`` added under ``label`` (in multi-label mode
    ``label`` may name several labels: ``billing; bug``), and the lines skipped because they already are an
    example of that label (spacing aside) or repeat an earlier line: a second copy only weighs one example
    twice. With nothing new, the state is returned as it was."""
    label = st.check_cell(label, st.is_multi(state))
    texts = [t.strip()[:st.MAX_INPUT_CHARS] for t in str(lines or "").splitlines() if t.strip()]
    if not texts:
        raise FewShotError(f"no example text for {label!r}; write one example per line")
    rows = st.state_rows(state)
    have = {st.example_key(text) for cell, text in st.complete_rows(rows) if cell == label}
    added, skipped = [], []
    for text in texts:
        key = st.example_key(text)
        (skipped if key in have else added).append(text)
        have.add(key)
    if not added:
        return state, skipped
    return st.with_rows(state, st.clean_rows(rows + [[label, t] for t in added])), skipped


def skipped_note(label: str, skipped: list[str]) -> str:
    """What the app says of the lines :func:`add_examples` skipped."""
    if len(skipped) == 1:
        first = skipped[0] if len(skipped[0]) <= 60 else skipped[0][:57] + "…"
        return f"{first!r} is already an example of {label!r}; not added again"
    return f"{len(skipped)} lines are already examples of {label!r}; not added again"


def remove_label(state: dict[str, Any], label: str) -> dict[str, Any]:
    """A new state without ``label`` and its examples (in multi-label mode the label is taken off every row,
    and rows left without a label are dropped)."""
    rows, multi = st.state_rows(state), st.is_multi(state)
    if not any(label in st.cell_labels(r[0], multi) for r in rows):
        raise FewShotError(f"there is no label {label!r}; labels are {st.labels_of(rows, multi)}")
    if not multi:
        return st.with_rows(state, [r for r in rows if r[0] != label])
    kept = [[st.CELL_SEPARATOR.join(rest), text] for cell, text in rows
            if (rest := [x for x in st.cell_labels(cell, True) if x != label]) or not cell]
    return st.with_rows(state, kept)


def rename_label(state: dict[str, Any], label: str, new_name: str) -> tuple[dict[str, Any], bool]:
    """A new state with ``label`` renamed ``new_name`` on every row, and whether it merged into a label that was
    already there (a text then under the merged label twice is kept once). In multi-label mode the label is
    renamed inside each cell; its per-label threshold follows it unless the merged label has one."""
    rows, multi = st.state_rows(state), st.is_multi(state)
    labels = st.labels_of(rows, multi)
    if label not in labels:
        raise FewShotError(f"there is no label {label!r}; labels are {labels}")
    new_name = st.check_label(new_name)
    if new_name == label:
        raise FewShotError(f"the label is already called {label!r}; type another name")
    if multi and LABEL_SEPARATOR in new_name:
        raise FewShotError(f"a label name cannot contain {LABEL_SEPARATOR!r} in multi-label mode, got {new_name!r}")
    merged = new_name in labels

    def key(cell: str, text: str) -> tuple[str, str]:
        return cell, st.example_key(text)

    have = {key(cell, text) for cell, text in rows if label not in st.cell_labels(cell, multi)}
    out: st.Rows = []
    for cell, text in rows:
        parts = st.cell_labels(cell, multi)
        if label in parts:
            cell = st.CELL_SEPARATOR.join(dict.fromkeys(new_name if x == label else x for x in parts))
            if key(cell, text) in have:
                continue  # a merged label's example that the other label already had
            have.add(key(cell, text))
        out.append([cell, text])
    options = dict(st.state_options(state))
    thresholds = dict(options.get("label_thresholds") or {})
    if label in thresholds:
        value = thresholds.pop(label)
        thresholds.setdefault(new_name, value)
        options["label_thresholds"] = thresholds
    return st.with_rows(state, out, options), merged
