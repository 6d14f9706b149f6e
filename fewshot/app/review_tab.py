"""The handlers of Batch's review section (:mod:`fewshot.app.review`): filter the last batch's rows, add a row as
an example, and find the groups of similar rows no label covers and add them at once.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from ..errors import FewShotError
from . import label_edits as edits
from . import labels_tab, ui
from . import review as rv
from . import state as st


@ui.friendly
def review(unknown_only: bool, below: float, label: str, batch: Any) -> tuple[Any, ...]:
    """The last batch's rows that pass the filters, lowest confidence first (API ``/review``)."""
    batch, table = rv.filter_rows(batch, unknown_only, below, label)
    return table, batch


def no_match_note(unknown_only: Any, below: Any, label: Any) -> str:
    """What the review says when no row passes its filters (an empty table alone reads as a fault): which filters
    are on."""
    parts = [f"confidence below {float(below):g}"] if below is not None and float(below) < 1 else []
    parts += ["only 'unknown'"] if unknown_only else []
    parts += [f"predicted {ui.esc(label)}"] if label not in (None, "", rv.ALL_LABELS) else []
    return f"_No rows match these filters ({', '.join(parts)}); loosen one to see rows._"


@ui.friendly
def review_shown(unknown_only: bool, below: float, label: str, batch: Any) -> tuple[Any, ...]:
    """The review's filters changed, or a row was added: the rows that pass, and a note when none does."""
    if below is None:  # a number box emptied while typing
        return gr.skip(), gr.skip(), gr.skip()
    batch, table = rv.filter_rows(batch, unknown_only, below, label)
    return table, batch, "" if len(table) else no_match_note(unknown_only, below, label)


def review_after_batch(batch: Any) -> tuple[Any, ...]:
    """After Batch's *Classify*: the review section with all rows, its filters reset, the label filter's choices,
    no groups yet."""
    batch, table = rv.filter_rows(batch)
    labels = [rv.ALL_LABELS, *rv.labels_in(batch)]
    return (table, batch, gr.Column(visible=True), gr.Checkbox(value=False), gr.Slider(value=1.0),
            gr.Dropdown(choices=labels, value=rv.ALL_LABELS), "", None, gr.Dropdown(value=None), [],
            pd.DataFrame(columns=rv.GROUP_HEADERS), gr.Dropdown(choices=[], value=None), "")


@ui.friendly
def review_add(index: float, label: str, state: dict[str, Any], batch: Any) -> tuple[Any, ...]:
    """Add the review row at ``index`` (its position in the review table) as an example of ``label``; an
    empty label: of its predicted label ("this is right"). Returns the label set (API ``/review_add``)."""
    new, batch, used = rv.add_row(state, batch, index, label)
    if st.state_rows(new) == st.state_rows(state):  # the text already was an example of that label
        gr.Info(edits.skipped_note(used, [rv.picked(batch, index)["text"]]), duration=4)
    else:
        gr.Info(f"Added as an example of '{used}' (see the Labels tab)", duration=3)
    return (*labels_tab.label_view(new), batch)


def review_right(index: float, state: dict[str, Any], batch: Any) -> tuple[Any, ...]:
    """"This is right": the row becomes an example of its predicted label."""
    return review_add(index, "", state, batch)


@ui.friendly
def review_groups(batch: Any, int8: Any, encoder: Any, state: dict[str, Any], cache: Any,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Group the batch's rows answered unknown, with the least in-scope others, that resemble each other
    (:mod:`fewshot.uncovered`): the groups table, the review with them, the group picker (API ``/review_groups``)."""
    from ..uncovered import MAX_GROUP_TEXTS, MIN_GROUP_SIZE, group_vectors

    rows, texts = rv.group_pool(batch)
    if len(rows) == MAX_GROUP_TEXTS:
        gr.Warning(f"only the {MAX_GROUP_TEXTS} least in-scope rows are grouped", duration=5)
    fit = ui.fitted(state, cache, progress, int8, encoder)
    vectors = fit.clf.encoder.encode(texts, progress=ui.progress_fn(progress, "Encoding the least confident rows"))
    batch, table = rv.with_groups(batch, rows, group_vectors(vectors))
    if table.empty:
        gr.Info(f"No group of {MIN_GROUP_SIZE} or more similar texts among the {len(rows)} least confident rows",
                duration=5)
    numbers = list(range(1, len(table) + 1))
    return table, batch, gr.Dropdown(choices=numbers, value=numbers[0] if numbers else None), fit


def group_pick(batch: Any, evt: gr.SelectData) -> Any:
    """A clicked row of the groups table picks its group."""
    position = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    groups = batch.get("groups") if isinstance(batch, dict) else None
    if not groups or not isinstance(position, int) or not 0 <= position < len(groups):
        return gr.skip()
    return gr.Dropdown(value=position + 1)


@ui.friendly
def review_add_group(group: Any, label: str, state: dict[str, Any], batch: Any) -> tuple[Any, ...]:
    """Add a group's most typical texts, a label's worth, as examples of ``label`` (a new name, a label, or
    "none of these"). Returns the label set (API ``/review_add_group``)."""
    new, batch, used, added, already = rv.add_group_texts(state, batch, group, label)
    gr.Info(group_added_note(used, added, already, rv.texts_left(batch, group)), duration=5)
    return (*labels_tab.label_view(new), batch)


def group_added_note(label: str, added: list[str], already: list[str], left: int) -> str:
    """What *Add group* did: the texts really added (a sentence the batch repeats counts once), those that already
    were examples, and whether the group has more."""
    n, m = len(added), len(already)
    if n:
        said = (f"Added {n} new example{'s' if n != 1 else ''} of '{label}', the group's most typical "
                f"text{'s' if n != 1 else ''}")
        said += f"; {m} of its texts already were examples of '{label}'" if m else ""
    else:
        said = f"Nothing added: the group's {m} remaining text(s) already are examples of '{label}'"
    more = f"; {left} more text(s) left: click Add group again for the next ones" if left else \
        "; no text of the group is left"
    return said + more + " (see the Labels tab)"


def review_pick(batch: Any, int8: Any, encoder: Any, state: dict[str, Any], cache: Any,
                evt: gr.SelectData) -> tuple[Any, ...]:
    """A clicked review row: its text, its position, the label picker (empty after ``unknown``) and its
    closest examples in the current label set."""
    position = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    try:
        row = rv.picked(batch, position)
    except FewShotError:
        return "", None, gr.Dropdown(value=None), [], gr.skip()
    unknown = isinstance(batch, dict) and row["label"] == batch.get("unknown_label")
    suggestion = gr.Dropdown(value=None if unknown else row["label"])
    try:
        fit = ui.fitted(state, cache, None, int8, encoder)
        pred = fit.clf.predict_details([row["text"]], top=1, n_matches=5)[0]
        near = [[m.label, round(m.similarity, 2), m.text] for m in pred.matches]
    except FewShotError as exc:
        gr.Warning(str(exc), duration=5)
        return row["text"], position, suggestion, [], gr.skip()
    return row["text"], position, suggestion, near, fit
