"""The app's event handlers: what each button, upload and API call does, over :mod:`fewshot.app.state`.

Every handler is thin: it validates nothing itself, calls :mod:`fewshot.app.state` (which calls the
library), renders the result (Markdown with user text escaped, tables, component updates) and turns
:class:`~fewshot.FewShotError` into a ``gr.Error`` toast. A failed action never changes the label set.
The session's label set and fitted classifier come in as arguments and go out as return values (Gradio
keeps them per session, see :mod:`fewshot.app.views`); nothing here keeps state of its own. The layout
that wires these handlers to components is :mod:`fewshot.app.views`.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import pandas as pd

from ..errors import FewShotError
from . import state as st
from . import warmup

log = logging.getLogger("fewshot.app")
F = TypeVar("F", bound=Callable[..., Any])

PREVIEW_ROWS = 50


# ---- helpers ---------------------------------------------------------------------------------------
def friendly(fn: F) -> F:
    """Turn library errors into a clear ``gr.Error`` and unexpected ones into a short message (logged)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except FewShotError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        except Exception as exc:  # noqa: BLE001 - the user gets one line, the log gets the traceback
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(exc).__name__}). Your labels are unchanged; "
                           "please try again or check the input.", print_exception=False) from exc

    return wrapper  # type: ignore[return-value]


def esc(text: Any) -> str:
    """User text made inert for Markdown/HTML display."""
    out = html.escape(str(text), quote=False)
    for ch in "\\`*_[]|#~":
        out = out.replace(ch, "\\" + ch)
    return " ".join(out.split())


def progress_fn(progress: gr.Progress | None, desc: str) -> Callable[[int, int], None] | None:
    """Adapt ``gr.Progress`` to the library's ``progress(done, total)`` callback."""
    if progress is None:
        return None

    def update(done: int, total: int) -> None:
        if total:
            progress((done, total), desc=desc, unit="texts")

    return update


def file_path(file: Any) -> str:
    """The path of an uploaded file (``gr.File`` gives a str; some clients send a dict)."""
    if isinstance(file, dict):
        file = file.get("path") or file.get("name")
    if not file:
        raise FewShotError("no file uploaded; choose a CSV file first")
    return str(file)


def summary_md(rows: st.Rows) -> str:
    """Counts per label and the diagnostics, as Markdown (user text escaped)."""
    counts = st.counts_of(rows)
    if not counts:
        return "_No examples yet: load an example set, import a CSV, or add a label below._"
    lines = [f"**{len(counts)} labels · {sum(counts.values())} examples**", "", "| label | examples |", "|---|---|"]
    lines += [f"| {esc(lab)} | {n} |" for lab, n in counts.items()]
    incomplete = len(rows) - len(st.complete_rows(rows))
    notes = [f"⚠ {incomplete} row(s) have a label or a text missing and are ignored"] if incomplete else []
    ready = warmup.is_ready(False)  # the label set shows at once; the embedding check follows when it can
    notes += [f"⚠ {esc(f.message)}" for f in st.findings(rows, embeddings=ready)]
    if not ready:
        notes.append("ℹ the encoder is still being prepared: the check for examples that sit closer to another "
                     "label runs once it is ready (press *Re-check label set*)")
    if st.NONE_LABEL in counts:
        notes.insert(0, f"ℹ the {counts[st.NONE_LABEL]} example(s) labelled `{st.NONE_LABEL}` are \"none of these\" "
                        "examples: no label, but texts closest to them are answered unknown")
    if len(set(counts) - {st.NONE_LABEL}) < 2:
        notes.insert(0, "ℹ add a second label to start classifying")
    lines += ["", "**Warnings**" if notes else "✓ No warnings", ""] + [f"- {n}" for n in notes[:30]]
    if len(notes) > 30:
        lines.append(f"- … and {len(notes) - 30} more")
    return "\n".join(lines)


def label_view(state: dict[str, Any]) -> tuple[dict[str, Any], list[list[str]], str]:
    """(state, table rows, summary) — the outputs of every action that changes the label set."""
    rows = st.state_rows(state)
    return state, rows or [["", ""]], summary_md(rows)


def fitted(state: dict[str, Any], cache: Any, progress: gr.Progress | None = None,
           int8: Any = None) -> st.Fitted:
    """The session's classifier (refitted only when the label set or the encoder changed)."""
    flag = st.int8_flag(int8)
    if progress is not None and not warmup.is_ready(flag):
        progress(None, desc="Preparing the encoder (first use after start)")
    return st.fitted_classifier(state, cache, progress_fn(progress, "Encoding examples"), int8=flag)


# ---- label-set actions -----------------------------------------------------------------------------
@friendly
def load_example(name: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a ready example set (undo brings the old one back)."""
    if name not in st.example_sets():
        name = next((k for k in st.example_sets() if k.lower() == str(name).lower()), name)
    rows = st.load_example_set(name)
    gr.Info(f"Loaded '{name}': {len(st.labels_of(rows))} labels, {len(rows)} examples", duration=3)
    return label_view(st.with_rows(state, rows, {}))


@friendly
def add_examples(label: str, lines: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Add examples (one per line) to a label, new or existing."""
    new = st.add_examples(state, label, lines)
    if any(len(line.strip()) > st.MAX_INPUT_CHARS for line in str(lines or "").splitlines()):
        gr.Warning(f"examples are cut to {st.MAX_INPUT_CHARS:,} characters", duration=5)
    return label_view(new)


@friendly
def set_table(table: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by the edited table (rows of label, text)."""
    new = st.with_rows(state, st.clean_rows(table))
    return new, summary_md(st.state_rows(new))


@friendly
def add_one_example(label: str, text: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Add one text (from Classify or Evaluate) as an example of ``label``."""
    if not str(text or "").strip():
        raise FewShotError("there is no text to add; classify a sentence or click a misclassified row first")
    out = label_view(st.add_examples(state, label, " ".join(str(text).split())))
    gr.Info(f"Added as an example of '{st.check_label(label)}' (see the Labels tab)", duration=3)
    return out


@friendly
def remove_label(label: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Remove a label and all its examples."""
    return label_view(st.remove_label(state, label))


@friendly
def undo(state: dict[str, Any]) -> tuple[Any, ...]:
    """Go back to the label set before the last change."""
    return label_view(st.undo(state))


@friendly
def show_label_set(state: dict[str, Any]) -> tuple[Any, ...]:
    """The current table and its counts and warnings."""
    _, rows, summary = label_view(state)
    return rows, summary


@friendly
def import_csv(file: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a ``text,label`` CSV."""
    path = file_path(file)
    rows = st.rows_from_csv(path)
    gr.Info(f"Imported {len(rows)} examples of {len(st.labels_of(rows))} labels", duration=3)
    return label_view(st.with_rows(state, rows))


@friendly
def export_csv(state: dict[str, Any]) -> str:
    """The label set as a ``text,label`` CSV download."""
    return str(st.export_csv(st.state_rows(state)))


@friendly
def save_classifier(int8: bool, state: dict[str, Any], cache: Any,
                    progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """The classifier as a zip of its portable folder (loadable with ``FewShotClassifier.load``)."""
    fit = fitted(state, cache, progress, int8)
    return str(st.save_zip(fit)), fit


@friendly
def load_classifier(file: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a saved classifier zip."""
    loaded, fit = st.load_zip(file_path(file))
    new = st.with_rows(state, loaded["rows"], loaded["options"])
    gr.Info(f"Loaded a classifier with {len(st.labels_of(loaded['rows']))} labels", duration=3)
    return (*label_view(new), fit)


# ---- classify --------------------------------------------------------------------------------------
AUTO_LABEL = "Unknown: automatic (from your examples)"
AUTO_INFO = ("answer 'unknown' when a text scores below nearly all of your own examples (the threshold that "
             "costs about 2% of accuracy on them, by cross-validation); untick to set a confidence threshold yourself")
INT8_LABEL = "int8 encoder"
INT8_INFO = ("on 2 cores about twice the throughput of fp32 (CSVs), the same time for one sentence, 5-shot "
             "accuracy within 0.3 points; switching encodes your examples again")


def verdict_md(pred: Any, rule: st.Unknown, unknown_label: str) -> str:
    """The verdict: the label (or unknown) and why, in plain words (user text escaped)."""
    best, conf = esc(pred.top[0][0]), pred.top[0][1]
    if pred.label == unknown_label and pred.score == float("-inf"):
        return (f"### unknown\nBest guess **{best}** ({conf:.0%}), but the text is closest to your "
                f"\"none of these\" examples (label **{esc(unknown_label)}**).")
    if pred.label == unknown_label and rule.mode == "auto":
        return (f"### unknown\nBest guess **{best}** ({conf:.0%}), but the text's in-scope score "
                f"**{pred.score:.2f}** is below the automatic threshold **{rule.threshold:.2f}** derived from "
                "your examples: it looks unlike all of them. Add it as an example if it belongs to a label.")
    if pred.label == unknown_label and rule.mode == "confidence":
        return (f"### unknown\nBest guess **{best}** at {conf:.0%}, below the threshold of "
                f"{rule.threshold:.0%}.")
    out = f"### {esc(pred.label)}\nconfidence {pred.confidence:.0%}"
    if rule.mode == "auto":
        out += f" · in-scope score {pred.score:.2f} (automatic unknown threshold {rule.threshold:.2f})"
    elif rule.note:
        out += f"  \n_Automatic unknown is off: {esc(rule.note)}._"
    return out


@friendly
def classify(text: str, auto_unknown: bool, threshold: float, int8: bool, state: dict[str, Any],
             cache: Any) -> tuple[Any, ...]:
    """Top labels with probabilities, a verdict (or unknown, with why), and the matched support examples."""
    if not str(text or "").strip():
        raise FewShotError("type a sentence to classify")
    fit = fitted(state, cache, None, int8)
    rule = st.unknown_rule(fit.clf, auto_unknown, threshold)
    if len(str(text)) > st.MAX_INPUT_CHARS:
        gr.Warning(f"the text is {len(str(text)):,} characters long; only the first {st.MAX_INPUT_CHARS:,} "
                   "are classified", duration=5)
    pred = st.predict_text(fit.clf, str(text), rule)
    bars = dict(pred.top)
    verdict = verdict_md(pred, rule, fit.clf.config.unknown_label)
    matches = [[m.label, m.text, round(m.similarity, 3)] for m in pred.matches]
    return bars, verdict, matches, fit


def reclassify(text: str, auto_unknown: bool, threshold: float, int8: bool, state: dict[str, Any],
               cache: Any) -> tuple[Any, ...]:
    """Re-run :func:`classify` when the unknown rule or the encoder changes; silent with nothing to classify."""
    if not str(text or "").strip() or len(st.labels_of(st.state_rows(state))) < 2:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return classify(text, auto_unknown, threshold, int8, state, cache)


def toggle_slider(auto_unknown: bool) -> Any:
    """The confidence slider is shown only when the automatic unknown is off."""
    return gr.Slider(visible=not auto_unknown)


def suggest_label(bars: Any) -> Any:
    """Preselect the predicted label in Classify's 'add as example' picker (one click to confirm)."""
    if isinstance(bars, dict):  # gr.Label hands over {label: confidence}
        label = max(bars, key=lambda k: bars[k]) if bars else None
    else:
        label = bars
    return gr.Dropdown(value=str(label)) if label else gr.skip()


# ---- batch -----------------------------------------------------------------------------------------
@friendly
def batch_columns(file: Any) -> Any:
    """The CSV's columns for the text-column dropdown (a likely text column preselected)."""
    if not file:
        return gr.Dropdown(choices=[], value=None)
    df = st.read_upload(file_path(file))
    cols = [str(c) for c in df.columns]
    guess = st.guess_column(cols, ("text", "sentence", "message", "review", "body", "content")) or cols[0]
    return gr.Dropdown(choices=cols, value=guess)


@friendly
def classify_csv(file: Any, column: str, auto_unknown: bool, threshold: float, int8: bool,
                 state: dict[str, Any], cache: Any, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Label every row of a CSV: preview, labelled-CSV download and a summary (unknowns counted)."""
    path = file_path(file)
    df = st.read_upload(path)
    if not column:
        raise FewShotError(f"choose the text column; the columns are {list(map(str, df.columns))}")
    fit = fitted(state, cache, progress, int8)
    rule = st.unknown_rule(fit.clf, auto_unknown, threshold)
    out, blank = st.classify_frame(fit.clf, df, column, rule, progress_fn(progress, "Classifying"))
    long = int((df[column].str.len() > st.MAX_INPUT_CHARS).sum())
    if long:
        gr.Warning(f"{long} text(s) are longer than {st.MAX_INPUT_CHARS:,} characters; only their start was "
                   "classified", duration=5)
    if blank:
        gr.Warning(f"{blank} row(s) have an empty '{column}' cell; they are kept with an empty label",
                   duration=5)
    label_col, _, _, score_col = st.added_columns(df)
    counts = out[label_col][out[label_col] != ""].value_counts()
    summary = f"**{len(out) - blank} rows labelled.** " + " · ".join(f"{esc(k)}: {v}" for k, v in counts.items())
    unknown = int(counts.get(fit.clf.config.unknown_label, 0))
    if rule.mode == "auto":
        summary += (f"  \n{unknown} row(s) answered *unknown*: in-scope score (column `{score_col}`) below "
                    f"the automatic threshold {rule.threshold:.2f} derived from your examples")
    elif rule.mode == "confidence":
        summary += f"  \n{unknown} row(s) answered *unknown*: confidence below {rule.threshold:.0%}"
    elif rule.note:
        summary += f"  \nAutomatic unknown is off: {esc(rule.note)}"
    if blank:
        summary += f"  \n⚠ {blank} row{'s' if blank > 1 else ''} with an empty text kept unlabelled"
    return out.head(PREVIEW_ROWS), str(st.write_labelled(out, Path(path).name)), summary, fit


# ---- evaluate --------------------------------------------------------------------------------------
@friendly
def eval_columns(file: Any) -> tuple[Any, Any]:
    """Text and label column dropdowns for an uploaded labelled CSV."""
    if not file:
        return gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None)
    cols = [str(c) for c in st.read_upload(file_path(file)).columns]
    text = st.guess_column(cols, ("text", "sentence", "message", "review", "body")) or cols[0]
    label = st.guess_column(cols, ("label", "labels", "gold", "category", "class", "intent", "topic"))
    if label is None:
        gr.Warning("no label column found (e.g. 'label'); choose the column that holds the true labels")
    return gr.Dropdown(choices=cols, value=text), gr.Dropdown(choices=cols, value=label)


@friendly
def evaluate_csv(file: Any, text_col: str, label_col: str, int8: bool, state: dict[str, Any],
                 cache: Any, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Accuracy, macro-F1, confusion matrix and misclassified rows on a labelled CSV."""
    if not text_col or not label_col:
        raise FewShotError("choose the text column and the label column first")
    if text_col == label_col:
        raise FewShotError("the text column and the label column must differ")
    df = st.read_upload(file_path(file))
    fit = fitted(state, cache, progress, int8)
    res = st.evaluate_frame(fit.clf, df, text_col, label_col, progress_fn(progress, "Classifying"))
    lines = [f"**Accuracy {res['accuracy']:.1%} · macro-F1 {res['macro_f1']:.3f}** on {res['n']} rows "
             f"({len(res['misclassified'])} misclassified)"]
    if res["unseen_labels"]:
        lines.append(f"⚠ labels in the file but not in your label set: "
                     f"{', '.join(esc(x) for x in res['unseen_labels'][:10])}")
    if res["skipped"]:
        lines.append(f"⚠ {res['skipped']} row(s) without text or label were skipped")
    lines = ["  \n".join(lines), "", "| label | F1 | n |", "|---|---|---|"]
    lines += [f"| {esc(lab)} | {f1:.3f} | {res['counts'][lab]} |" for lab, f1 in res["per_label_f1"].items()]
    fig = st.confusion_figure(res["gold"], res["predictions"])
    return "\n".join(lines), fig, res["misclassified"], fit


def pick_row(table: Any, evt: gr.SelectData) -> tuple[str, Any]:
    """Fill the 'add as example' fields from the clicked misclassified row."""
    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    if df.empty or row is None or row >= len(df):
        return "", gr.Dropdown()
    text, gold = str(df.iloc[row, 0]), str(df.iloc[row, 1])
    return text, gr.Dropdown(value=gold)


# ---- session persistence ---------------------------------------------------------------------------
def restore(saved: Any) -> tuple[Any, ...]:
    """On page load: bring back the label set kept in the browser (ignored if malformed)."""
    try:
        rows = st.state_rows(saved)
        state = {"rows": rows, "options": st.state_options(saved)}
    except FewShotError:
        state = st.empty_state()
    return label_view(state)


def persist(state: dict[str, Any]) -> tuple[Any, ...]:
    """After every change: mirror the label set into the browser and refresh the label pickers."""
    rows = st.state_rows(state)
    labels = st.labels_of(rows)
    saved = {"rows": rows, "options": st.state_options(state)}
    pickers = [gr.Dropdown(choices=labels) for _ in range(3)]
    return (saved, *pickers)


# ---- encoder status --------------------------------------------------------------------------------
def status_md(status: warmup.Status) -> str:
    """The one-line encoder status under the title."""
    kind = "int8" if status.int8 else "fp32"
    if status.state == "ready":
        return f"<small>✓ Encoder ready ({kind}, prepared in {status.seconds:.0f} s)</small>"
    if status.state == "failed":
        return (f"<small>✗ The encoder could not be prepared ({esc(status.error)}); the next request "
                "tries again</small>")
    return (f"<small>Preparing the encoder ({kind}: loading the model"
            + (", quantising and compiling" if status.int8 else "")
            + ")… You can edit labels meanwhile; classifying waits until it is ready.</small>")


def encoder_status() -> tuple[str, Any]:
    """The status line, and the timer that refreshes it while the encoder is being prepared.

    Also starts the preparation when nothing did (an app started by ``gradio app.py`` rather than
    :func:`fewshot.app.launch`), so the first visitor's page sets it going.
    """
    warmup.start()
    status = warmup.status()
    return status_md(status), gr.Timer(active=status.state in ("idle", "preparing"))

