"""The Labels tab's handlers: load, edit, import, export and undo the label set, save and load a classifier, and
the label set kept in the browser (restored on page load, mirrored after every change).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import FewShotError
from . import browser, classifier_zip, downloads, ui, uploads, warmup
from . import label_edits as edits
from . import session_classifier as sc
from . import state as st

FEW_LABELS = 8  # more labels than this: the per-label counts collapse into a details block
FEW_WARNINGS = 3  # warnings shown at once; the others collapse (up to MAX_WARNINGS)
MAX_WARNINGS = 60


def replaced(state: dict[str, Any]) -> str:
    """What an action that replaces the label set says about the examples it replaced ("" when there were none)."""
    n = len(st.complete_rows(st.state_rows(state)))
    return f"; replaced {n} example{'s' if n != 1 else ''} (Undo brings them back)" if n else ""


def summary_md(rows: st.Rows, multi: bool = False) -> str:
    """Counts per label and the diagnostics, as Markdown (user text escaped); ``multi``: multi-label mode (a
    text's rows merged into one example, counted under each of its labels)."""
    counts = st.counts_of(rows, multi)
    if not counts:
        return "_No examples yet: load an example set, import a CSV, or add a label below._"
    if multi:
        sets = st.example_sets_of(rows)
        several = sum(len(labs) > 1 for labs in sets.values())
        labels = len(set(counts) - {st.NONE_LABEL})  # "none of these" is no label (and left out of the fit)
        lines = [f"**Multi-label · {labels} labels · {len(sets)} examples** ({several} with several labels)", ""]
    else:
        lines = [f"**{len(counts)} labels · {sum(counts.values())} examples**", ""]
    if len(counts) <= FEW_LABELS:
        lines += ["| label | examples |", "|---|---|"] + [f"| {ui.esc(lab)} | {n} |" for lab, n in counts.items()]
    else:  # a long list stays one click away instead of making the page thousands of pixels tall
        lines += [f"<details><summary>Examples per label ({len(counts)} labels)</summary>", "",
                  " · ".join(f"{ui.esc(lab)} ({n})" for lab, n in counts.items()), "", "</details>"]
    incomplete = len(rows) - len(st.complete_rows(rows))
    notes = [f"⚠ {incomplete} row(s) have a label or a text missing and are ignored"] if incomplete else []
    ready = warmup.is_ready(False)  # the label set shows at once; the embedding check follows when it can
    notes += [f"⚠ {ui.esc(f.message)}" for f in sc.findings(rows, embeddings=ready, multi=multi)]
    if not ready:
        notes.append("ℹ the encoder is still being prepared: the check for examples that sit closer to another "
                     "label runs once it is ready (press *Re-check label set*)")
    if st.NONE_LABEL in counts and multi:
        notes.insert(0, f"ℹ the {counts[st.NONE_LABEL]} example(s) labelled `{st.NONE_LABEL}` (\"none of these\") "
                        "are left out in multi-label mode, where a text no label reaches is answered unknown by "
                        "itself; they are kept, and used again when multi-label is off")
    elif st.NONE_LABEL in counts:
        notes.insert(0, f"ℹ the {counts[st.NONE_LABEL]} example(s) labelled `{st.NONE_LABEL}` are \"none of these\" "
                        "examples: no label, but texts closest to them are answered unknown")
    if not multi and any(st.LABEL_SEPARATOR in lab for lab in counts):
        notes.insert(0, "ℹ some labels contain `;`: tick *Multi-label* above to read `billing; bug` as two labels")
    if len(set(counts) - {st.NONE_LABEL}) < 2:
        notes.insert(0, "ℹ add a second label to start classifying")
    lines += ["", f"**Warnings ({len(notes)})**" if notes else "✓ No warnings", ""]
    lines += [f"- {n}" for n in notes[:FEW_WARNINGS]]
    if len(notes) > FEW_WARNINGS:
        rest = notes[FEW_WARNINGS:MAX_WARNINGS]
        lines += ["", f"<details><summary>{len(notes) - FEW_WARNINGS} more warning(s)</summary>", ""]
        lines += [f"- {n}" for n in rest]
        if len(notes) > MAX_WARNINGS:
            lines.append(f"- … and {len(notes) - MAX_WARNINGS} more")
        lines += ["", "</details>"]
    return "\n".join(lines)


def label_view(state: dict[str, Any]) -> tuple[dict[str, Any], list[list[str]], str]:
    """(state, table rows, summary) — the outputs of every action that changes the label set."""
    rows = st.state_rows(state)
    return state, rows or [["", ""]], summary_md(rows, st.is_multi(state))


@ui.friendly
def load_example(name: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a ready example set (undo brings the old one back)."""
    if name not in uploads.example_sets():
        name = next((k for k in uploads.example_sets() if k.lower() == str(name).lower()), name)
    rows = uploads.load_example_set(name)
    gr.Info(f"Loaded '{name}': {len(st.labels_of(rows))} labels, {len(rows)} examples" + replaced(state), duration=5)
    return label_view(st.with_rows(state, rows, {"multi_label": True} if st.is_multi(state) else {}))


MULTI_LABEL = "Multi-label: a text may carry several labels"
MULTI_INFO = ("write them as 'billing; bug', or repeat a text under each label; Classify then answers every label "
              "above its threshold")


def multi_box(state: dict[str, Any]) -> Any:
    """The multi-label switch as the label set says (after a refused switch)."""
    return gr.Checkbox(value=st.is_multi(state))


@ui.friendly
def set_multi_label(multi: bool, state: dict[str, Any]) -> tuple[Any, ...]:
    """Switch multi-label mode (a text may carry several labels) on or off; the examples are kept."""
    return label_view(edits.set_multi_label(state, multi))


@ui.friendly
def add_examples(label: str, lines: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Add examples (one per line) to a label, new or existing."""
    new, skipped = edits.add_examples(state, label, lines)
    if any(len(line.strip()) > st.MAX_INPUT_CHARS for line in str(lines or "").splitlines()):
        gr.Warning(f"examples are cut to {st.MAX_INPUT_CHARS:,} characters", duration=5)
    if skipped:
        gr.Info(edits.skipped_note(st.check_cell(label, st.is_multi(state)), skipped), duration=5)
    return label_view(new)


@ui.friendly
def set_table(table: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by the edited table (rows of label, text)."""
    new = st.with_rows(state, st.clean_rows(table))
    return new, summary_md(st.state_rows(new), st.is_multi(new))


@ui.friendly
def add_one_example(label: str, text: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Add one text (from Classify or Evaluate) as an example of ``label``."""
    if not str(text or "").strip():
        raise FewShotError("there is no text to add; classify a sentence or click a misclassified row first")
    new, skipped = edits.add_examples(state, label, st.example_key(text))
    cell = st.check_cell(label, st.is_multi(state))
    gr.Info(edits.skipped_note(cell, skipped) if skipped else f"Added as an example of '{cell}' (see the Labels tab)",
            duration=3)
    return label_view(new)


@ui.friendly
def remove_label(label: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Remove a label and all its examples."""
    return label_view(edits.remove_label(state, label))


@ui.friendly
def rename_label(label: str, new_name: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Rename a label on all its examples; a name already in use merges the two labels."""
    new, merged = edits.rename_label(state, label, new_name)
    name = st.check_label(new_name)
    gr.Info(f"Merged '{label}' into '{name}'" if merged else f"Renamed '{label}' to '{name}'", duration=3)
    return label_view(new)


@ui.friendly
def undo(state: dict[str, Any]) -> tuple[Any, ...]:
    """Go back to the label set before the last change."""
    return label_view(st.undo(state))


@ui.friendly
def show_label_set(state: dict[str, Any]) -> tuple[Any, ...]:
    """The current table and its counts and warnings."""
    _, rows, summary = label_view(state)
    return rows, summary


@ui.friendly
def import_csv(file: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a ``text,label`` CSV."""
    path = ui.file_path(file, ui.NO_EXAMPLES)
    rows, cut = uploads.read_examples(path)
    labels = st.labels_of(rows, st.is_multi(state))
    gr.Info(f"Imported {len(rows)} examples of {len(labels)} labels" + replaced(state), duration=5)
    if cut:
        gr.Warning(uploads.cut_note(cut), duration=8)
    return label_view(st.with_rows(state, rows))


@ui.friendly
def export_csv(state: dict[str, Any]) -> str:
    """The label set as a ``text,label`` CSV download."""
    return str(downloads.export_csv(st.state_rows(state)))


@ui.friendly
def save_classifier(int8: bool, encoder: str, state: dict[str, Any], cache: Any,
                    progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """The classifier as a zip of its portable folder (loadable with ``FewShotClassifier.load``)."""
    fit = ui.fitted(state, cache, progress, int8, encoder)
    return str(classifier_zip.save_zip(fit)), fit


@ui.friendly
def load_classifier(file: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a saved classifier zip."""
    loaded, fit = classifier_zip.load_zip(ui.file_path(file, ui.NO_ZIP))
    new = st.with_rows(state, loaded["rows"], loaded["options"])
    point = fit.clf.config.score_threshold
    new = st.with_point(new, point, fit.tier)  # the zip's operating point, kept with its label set (or none)
    multi = st.is_multi(new)
    gr.Info(f"Loaded a {'multi-label ' if multi else ''}classifier with "
            f"{len(st.labels_of(loaded['rows'], multi))} labels"
            + (f" and its unknown threshold {point:.2f}" if point is not None else "") + replaced(state), duration=5)
    if fit.note:
        gr.Warning(f"Loaded, but {fit.note}", duration=10)
    return (*label_view(new), fit)


def restore(saved: Any) -> tuple[Any, ...]:
    """On page load: bring back the label set kept in the browser, checked like an upload (a refused one is
    explained and the session starts empty)."""
    state, why = browser.restored_state(saved)
    if why:
        gr.Warning(why, duration=10)
    return label_view(state)


def persist(state: dict[str, Any]) -> tuple[Any, ...]:
    """After every change: mirror the label set into the browser and refresh the label pickers."""
    rows = st.state_rows(state)
    multi = st.is_multi(state)
    labels = st.labels_of(rows, multi)
    saved = {"rows": rows, "options": st.state_options(state)}
    if point := st.state_point(state):  # the chosen operating point survives a reload with its label set
        saved["point"] = point
    adding = st.add_choices(labels, multi)  # Classify, Evaluate, review and group pickers: "none of these" too
    pickers = [gr.Dropdown(choices=labels), *(gr.Dropdown(choices=adding) for _ in range(4))]
    return (saved, *pickers, gr.Checkbox(value=multi))
