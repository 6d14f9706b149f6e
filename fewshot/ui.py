"""The Gradio web app: Labels, Classify, Batch and Evaluate tabs over :mod:`fewshot.ui_core`.

Every handler is thin: it validates nothing itself, calls :mod:`fewshot.ui_core` (which calls the
library) and turns :class:`~fewshot.FewShotError` into a ``gr.Error`` toast. A failed action never
changes the label set. State is per browser session: the label set lives in a ``gr.State`` (the API
client's session) mirrored into ``gr.BrowserState`` (survives a page reload); the fitted classifier
lives in a second ``gr.State``. Nothing mutable is shared between sessions except the read-only
encoder weights (and its text -> vector cache).
"""

from __future__ import annotations

import functools
import html
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import pandas as pd

from . import __version__
from . import ui_core as core
from .errors import FewShotError

log = logging.getLogger("fewshot.ui")
F = TypeVar("F", bound=Callable[..., Any])

TABLE_HEADERS = ["label", "text"]
PREVIEW_ROWS = 50
CSV_TYPES = [".csv", ".tsv", ".txt"]
DEFAULT_THRESHOLD = 0.5
STORAGE_KEY = "fewshot-label-set"
INTRO = ("Few-shot text classification: write a handful of examples per label, then classify "
         "sentences or whole CSV files. No training run, nothing leaves this session.")


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


def summary_md(rows: core.Rows) -> str:
    """Counts per label and the diagnostics, as Markdown (user text escaped)."""
    counts = core.counts_of(rows)
    if not counts:
        return "_No examples yet: load an example set, import a CSV, or add a label below._"
    lines = [f"**{len(counts)} labels · {sum(counts.values())} examples**", "", "| label | examples |", "|---|---|"]
    lines += [f"| {esc(lab)} | {n} |" for lab, n in counts.items()]
    incomplete = len(rows) - len(core.complete_rows(rows))
    notes = [f"⚠ {incomplete} row(s) have a label or a text missing and are ignored"] if incomplete else []
    notes += [f"⚠ {esc(f.message)}" for f in core.findings(rows)]
    if core.NONE_LABEL in counts:
        notes.insert(0, f"ℹ the {counts[core.NONE_LABEL]} example(s) labelled `{core.NONE_LABEL}` are \"none of these\" "
                        "examples: no label, but texts closest to them are answered unknown")
    if len(set(counts) - {core.NONE_LABEL}) < 2:
        notes.insert(0, "ℹ add a second label to start classifying")
    lines += ["", "**Warnings**" if notes else "✓ No warnings", ""] + [f"- {n}" for n in notes[:30]]
    if len(notes) > 30:
        lines.append(f"- … and {len(notes) - 30} more")
    return "\n".join(lines)


def label_view(state: dict[str, Any]) -> tuple[dict[str, Any], list[list[str]], str]:
    """(state, table rows, summary) — the outputs of every action that changes the label set."""
    rows = core.state_rows(state)
    return state, rows or [["", ""]], summary_md(rows)


def fitted(state: dict[str, Any], cache: Any, progress: gr.Progress | None = None,
           fast_encoder: Any = None) -> core.Fitted:
    """The session's classifier (refitted only when the label set or the encoder changed)."""
    return core.fitted_classifier(state, cache, progress_fn(progress, "Encoding examples"),
                                  quantize=core.int8_flag(fast_encoder))


# ---- label-set actions -----------------------------------------------------------------------------
@friendly
def load_example(name: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a ready example set (undo brings the old one back)."""
    if name not in core.example_sets():
        name = next((k for k in core.example_sets() if k.lower() == str(name).lower()), name)
    rows = core.load_example_set(name)
    gr.Info(f"Loaded '{name}': {len(core.labels_of(rows))} labels, {len(rows)} examples", duration=3)
    return label_view(core.with_rows(state, rows, {}))


@friendly
def add_examples(label: str, lines: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Add examples (one per line) to a label, new or existing."""
    new = core.add_examples(state, label, lines)
    if any(len(line.strip()) > core.MAX_TEXT_CHARS for line in str(lines or "").splitlines()):
        gr.Warning(f"examples are cut to {core.MAX_TEXT_CHARS:,} characters", duration=5)
    return label_view(new)


@friendly
def set_table(table: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by the edited table (rows of label, text)."""
    new = core.with_rows(state, core.clean_rows(table))
    return new, summary_md(core.state_rows(new))


@friendly
def add_one_example(label: str, text: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Add one text (from Classify or Evaluate) as an example of ``label``."""
    if not str(text or "").strip():
        raise FewShotError("there is no text to add; classify a sentence or click a misclassified row first")
    out = label_view(core.add_examples(state, label, " ".join(str(text).split())))
    gr.Info(f"Added as an example of '{core.check_label(label)}' (see the Labels tab)", duration=3)
    return out


@friendly
def remove_label(label: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Remove a label and all its examples."""
    return label_view(core.remove_label(state, label))


@friendly
def undo(state: dict[str, Any]) -> tuple[Any, ...]:
    """Go back to the label set before the last change."""
    return label_view(core.undo(state))


@friendly
def show_label_set(state: dict[str, Any]) -> tuple[Any, ...]:
    """The current table and its counts and warnings."""
    _, rows, summary = label_view(state)
    return rows, summary


@friendly
def import_csv(file: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a ``text,label`` CSV."""
    path = file_path(file)
    rows = core.rows_from_csv(path)
    gr.Info(f"Imported {len(rows)} examples of {len(core.labels_of(rows))} labels", duration=3)
    return label_view(core.with_rows(state, rows))


@friendly
def export_csv(state: dict[str, Any]) -> str:
    """The label set as a ``text,label`` CSV download."""
    return str(core.export_csv(core.state_rows(state)))


@friendly
def save_classifier(fast_encoder: bool, state: dict[str, Any], cache: Any,
                    progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """The classifier as a zip of its portable folder (loadable with ``FewShotClassifier.load``)."""
    fit = fitted(state, cache, progress, fast_encoder)
    return str(core.save_zip(fit)), fit


@friendly
def load_classifier(file: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a saved classifier zip."""
    loaded, fit = core.load_zip(file_path(file))
    new = core.with_rows(state, loaded["rows"], loaded["options"])
    gr.Info(f"Loaded a classifier with {len(core.labels_of(loaded['rows']))} labels", duration=3)
    return (*label_view(new), fit)


# ---- classify --------------------------------------------------------------------------------------
AUTO_LABEL = "Unknown: automatic (from your examples)"
AUTO_INFO = ("answer 'unknown' when a text scores below nearly all of your own examples (the threshold that "
             "costs about 2% of accuracy on them, by cross-validation); untick to set a confidence threshold yourself")
FAST_LABEL = "int8 encoder"
FAST_INFO = ("on 2 cores about twice the throughput of fp32 (CSVs), the same time for one sentence, 5-shot "
             "accuracy within 0.3 points; switching encodes your examples again")


def verdict_md(pred: Any, rule: core.Unknown, unknown_label: str) -> str:
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
def classify(text: str, auto_unknown: bool, threshold: float, fast_encoder: bool, state: dict[str, Any],
             cache: Any) -> tuple[Any, ...]:
    """Top labels with probabilities, a verdict (or unknown, with why), and the matched support examples."""
    if not str(text or "").strip():
        raise FewShotError("type a sentence to classify")
    fit = fitted(state, cache, None, fast_encoder)
    rule = core.set_unknown(fit.clf, auto_unknown, threshold)
    if len(str(text)) > core.MAX_TEXT_CHARS:
        gr.Warning(f"the text is {len(str(text)):,} characters long; only the first {core.MAX_TEXT_CHARS:,} "
                   "are classified", duration=5)
    pred = fit.clf.predict_details([str(text)[: core.MAX_TEXT_CHARS]], top=5, n_matches=5)[0]
    bars = dict(pred.top)
    verdict = verdict_md(pred, rule, fit.clf.config.unknown_label)
    matches = [[m.label, m.text, round(m.similarity, 3)] for m in pred.matches]
    return bars, verdict, matches, fit


def reclassify(text: str, auto_unknown: bool, threshold: float, fast_encoder: bool, state: dict[str, Any],
               cache: Any) -> tuple[Any, ...]:
    """Re-run :func:`classify` when the unknown rule or the encoder changes; silent with nothing to classify."""
    if not str(text or "").strip() or len(core.labels_of(core.state_rows(state))) < 2:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return classify(text, auto_unknown, threshold, fast_encoder, state, cache)


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
    df = core.read_upload(file_path(file))
    cols = [str(c) for c in df.columns]
    guess = core.guess_column(cols, ("text", "sentence", "message", "review", "body", "content")) or cols[0]
    return gr.Dropdown(choices=cols, value=guess)


@friendly
def classify_csv(file: Any, column: str, auto_unknown: bool, threshold: float, fast_encoder: bool,
                 state: dict[str, Any], cache: Any, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Label every row of a CSV: preview, labelled-CSV download and a summary (unknowns counted)."""
    path = file_path(file)
    df = core.read_upload(path)
    if not column:
        raise FewShotError(f"choose the text column; the columns are {list(map(str, df.columns))}")
    fit = fitted(state, cache, progress, fast_encoder)
    rule = core.set_unknown(fit.clf, auto_unknown, threshold)
    out, blank = core.classify_frame(fit.clf, df, column, progress_fn(progress, "Classifying"))
    long = int((df[column].str.len() > core.MAX_TEXT_CHARS).sum())
    if long:
        gr.Warning(f"{long} text(s) are longer than {core.MAX_TEXT_CHARS:,} characters; only their start was "
                   "classified", duration=5)
    if blank:
        gr.Warning(f"{blank} row(s) have an empty '{column}' cell; they are kept with an empty label",
                   duration=5)
    label_col, _, _, score_col = core.output_columns([str(c) for c in df.columns])
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
    return out.head(PREVIEW_ROWS), str(core.write_labelled(out, Path(path).name)), summary, fit


# ---- evaluate --------------------------------------------------------------------------------------
@friendly
def eval_columns(file: Any) -> tuple[Any, Any]:
    """Text and label column dropdowns for an uploaded labelled CSV."""
    if not file:
        return gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None)
    cols = [str(c) for c in core.read_upload(file_path(file)).columns]
    text = core.guess_column(cols, ("text", "sentence", "message", "review", "body")) or cols[0]
    label = core.guess_column(cols, ("label", "labels", "gold", "category", "class", "intent", "topic"))
    if label is None:
        gr.Warning("no label column found (e.g. 'label'); choose the column that holds the true labels")
    return gr.Dropdown(choices=cols, value=text), gr.Dropdown(choices=cols, value=label)


@friendly
def evaluate_csv(file: Any, text_col: str, label_col: str, fast_encoder: bool, state: dict[str, Any],
                 cache: Any, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Accuracy, macro-F1, confusion matrix and misclassified rows on a labelled CSV."""
    if not text_col or not label_col:
        raise FewShotError("choose the text column and the label column first")
    if text_col == label_col:
        raise FewShotError("the text column and the label column must differ")
    df = core.read_upload(file_path(file))
    fit = fitted(state, cache, progress, fast_encoder)
    res = core.evaluate_frame(fit.clf, df, text_col, label_col, progress_fn(progress, "Classifying"))
    lines = [f"**Accuracy {res['accuracy']:.1%} · macro-F1 {res['macro_f1']:.3f}** on {res['n']} rows "
             f"({len(res['misclassified'])} misclassified)"]
    if res["unseen_labels"]:
        lines.append(f"⚠ labels in the file but not in your label set: "
                     f"{', '.join(esc(x) for x in res['unseen_labels'][:10])}")
    if res["skipped"]:
        lines.append(f"⚠ {res['skipped']} row(s) without text or label were skipped")
    lines = ["  \n".join(lines), "", "| label | F1 | n |", "|---|---|---|"]
    lines += [f"| {esc(lab)} | {f1:.3f} | {res['counts'][lab]} |" for lab, f1 in res["per_label_f1"].items()]
    fig = core.confusion_figure(res["gold"], res["predictions"])
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
        rows = core.state_rows(saved)
        state = {"rows": rows, "options": core.state_options(saved)}
    except FewShotError:
        state = core.empty_state()
    return label_view(state)


def persist(state: dict[str, Any]) -> tuple[Any, ...]:
    """After every change: mirror the label set into the browser and refresh the label pickers."""
    rows = core.state_rows(state)
    labels = core.labels_of(rows)
    saved = {"rows": rows, "options": core.state_options(state)}
    pickers = [gr.Dropdown(choices=labels) for _ in range(3)]
    return (saved, *pickers)


# ---- layout ----------------------------------------------------------------------------------------
def build_app() -> gr.Blocks:
    """The whole app as a ``gr.Blocks`` (``app.py`` launches it)."""
    with gr.Blocks(title="fewshot · few-shot text classifier", delete_cache=(3600, 3600)) as demo:
        state = gr.State(core.empty_state())
        cache = gr.State(None)
        saved = gr.BrowserState(core.empty_state(), storage_key=STORAGE_KEY,
                                secret=os.environ.get("FEWSHOT_STATE_SECRET", "fewshot-local-label-set"))
        gr.Markdown(f"# fewshot <small>v{__version__}</small>\n{INTRO}")
        # per session (a component value travels with each request); every tab's encoding follows it
        fast = gr.Checkbox(value=core.INT8_DEFAULT, label=FAST_LABEL, info=FAST_INFO, elem_id="fast-encoder")
        with gr.Tabs():
            table, summary, remove_dd = _labels_tab(state, cache, fast)
            outs = [state, table, summary]
            add_dd_classify = _classify_tab(state, cache, outs, fast)
            _batch_tab(state, cache, fast)
            add_dd_eval = _evaluate_tab(state, cache, outs, fast)
        demo.load(restore, [saved], [state, table, summary], api_visibility="private")
        state.change(persist, [state], [saved, remove_dd, add_dd_classify, add_dd_eval],
                     api_visibility="private", show_progress="hidden")
    return demo


def _labels_tab(state: gr.State, cache: gr.State, fast: gr.Checkbox) -> tuple[Any, ...]:
    with gr.Tab("Labels", id="labels"):
        gr.Markdown("Start from a ready label set (one click), or write your own: **one row per example**.")
        with gr.Row(elem_id="example-sets"):
            names = list(core.example_sets())
            buttons = [gr.Button(n, size="sm", variant="secondary") for n in names]
        # the API's way in (buttons carry no value): a hidden picker whose change event loads the named set
        example_name = gr.Dropdown(choices=names, value=None, label="Example label set", visible=False)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                table = gr.Dataframe(value=[["", ""]], headers=TABLE_HEADERS, datatype=["str", "str"],
                                     column_count=(2, "fixed"), interactive=True, wrap=True, max_height=480,
                                     label="Examples (edit cells; add or delete rows from the table menu)",
                                     show_search="search", elem_id="label-table")
                with gr.Row():
                    new_label = gr.Textbox(label="Label", placeholder="e.g. billing", scale=1)
                    new_lines = gr.Textbox(label="Examples, one per line", lines=3, scale=3,
                                           placeholder="I was charged twice\nWhere is my invoice?")
                with gr.Row():
                    add_btn = gr.Button("Add examples", variant="primary")
                    remove_dd = gr.Dropdown(label="Label to remove", choices=[], scale=2,
                                            allow_custom_value=True)
                    remove_btn = gr.Button("Remove label", variant="stop", size="sm")
                    undo_btn = gr.Button("Undo last change", size="sm")
            with gr.Column(scale=2):
                summary = gr.Markdown(summary_md([]), elem_id="label-summary", label="Summary")
                check_btn = gr.Button("Re-check label set", size="sm")
                with gr.Accordion("Import · export · save", open=True):
                    import_btn = gr.UploadButton("Import CSV (text,label)", file_types=CSV_TYPES, size="sm")
                    export_btn = gr.Button("Export CSV", size="sm")
                    save_btn = gr.Button("Save classifier (.zip)", size="sm")
                    load_btn = gr.UploadButton("Load classifier (.zip)", file_types=[".zip"], size="sm")
                    download = gr.File(label="Download", interactive=False)
    outs = [state, table, summary]
    for name, btn in zip(names, buttons):
        btn.click(functools.partial(load_example, name), [state], outs, api_visibility="private")
    example_name.change(load_example, [example_name, state], outs, api_name="load_example")
    add_btn.click(add_examples, [new_label, new_lines, state], outs, api_name="add_examples").success(
        lambda: "", None, new_lines, api_visibility="private")
    table.input(set_table, [table, state], [state, summary], api_name="set_table", trigger_mode="always_last")
    remove_btn.click(remove_label, [remove_dd, state], outs, api_name="remove_label")
    undo_btn.click(undo, [state], outs, api_name="undo")
    check_btn.click(show_label_set, [state], [table, summary], api_name="label_set")
    import_btn.upload(import_csv, [import_btn, state], outs, api_name="import_csv")
    export_btn.click(export_csv, [state], [download], api_name="export_csv")
    save_btn.click(save_classifier, [fast, state, cache], [download, cache], api_name="save_classifier")
    load_btn.upload(load_classifier, [load_btn, state], [*outs, cache], api_name="load_classifier")
    return table, summary, remove_dd


def _classify_tab(state: gr.State, cache: gr.State, outs: list[Any], fast: gr.Checkbox) -> gr.Dropdown:
    with gr.Tab("Classify", id="classify"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                text = gr.Textbox(label="Text", lines=4, placeholder="Paste or type a sentence…",
                                  elem_id="classify-text")
                auto = gr.Checkbox(value=True, label=AUTO_LABEL, info=AUTO_INFO, elem_id="classify-auto")
                threshold = gr.Slider(0, 1, value=DEFAULT_THRESHOLD, step=0.05, label="Unknown below confidence",
                                      info="answer 'unknown' when the best label is less likely than this "
                                           "(0: always pick a label)", visible=False, elem_id="classify-threshold")
                go = gr.Button("Classify", variant="primary", elem_id="classify-run")
                with gr.Row():
                    add_dd = gr.Dropdown(label="Add this text as an example of", choices=[], scale=2,
                                         allow_custom_value=True, elem_id="classify-add")
                    add_btn = gr.Button("Add as example", size="sm")
            with gr.Column(scale=3):
                verdict = gr.Markdown("_The answer appears here._", elem_id="classify-verdict", label="Verdict")
                bars = gr.Label(num_top_classes=5, label="Top labels", elem_id="classify-bars", show_heading=False)
                matches = gr.Dataframe(headers=["label", "example", "cosine"], label="Closest examples",
                                       interactive=False, wrap=True)
    inputs, outputs = [text, auto, threshold, fast, state, cache], [bars, verdict, matches, cache]
    for event in (go.click(classify, inputs, outputs, api_name="classify"),
                  text.submit(classify, inputs, outputs, api_visibility="undocumented")):
        event.success(suggest_label, [bars], [add_dd], api_visibility="private", show_progress="hidden")
    threshold.release(reclassify, inputs, outputs, api_visibility="private", show_progress="minimal")
    auto.input(toggle_slider, [auto], [threshold], api_visibility="private", show_progress="hidden")
    auto.input(reclassify, inputs, outputs, api_visibility="private", show_progress="minimal")
    fast.input(reclassify, inputs, outputs, api_visibility="private", show_progress="minimal")
    add_btn.click(add_one_example, [add_dd, text, state], outs, api_name="add_example")
    return add_dd


def _batch_tab(state: gr.State, cache: gr.State, fast: gr.Checkbox) -> None:
    with gr.Tab("Batch", id="batch"):
        gr.Markdown(f"Upload a CSV (UTF-8 or UTF-16; comma, `;`, tab or `|` separated; up to {core.MAX_ROWS:,} "
                    "rows), choose the text column, classify. The download adds `label`, `confidence`, `top_3` "
                    "and `in_scope_score`; cells a spreadsheet would run as a formula are prefixed with `'`.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                file = gr.File(label="CSV file", file_types=CSV_TYPES, type="filepath", elem_id="batch-file")
                column = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True, elem_id="batch-column")
                auto = gr.Checkbox(value=True, label=AUTO_LABEL, info=AUTO_INFO, elem_id="batch-auto")
                threshold = gr.Slider(0, 1, value=DEFAULT_THRESHOLD, step=0.05, label="Unknown below confidence",
                                      info="0: always pick a label", visible=False, elem_id="batch-threshold")
                go = gr.Button("Classify CSV", variant="primary", elem_id="batch-run")
            with gr.Column(scale=3):
                summary = gr.Markdown(elem_id="batch-summary", label="Summary")
                download = gr.File(label="Labelled CSV", interactive=False, elem_id="batch-download")
        preview = gr.Dataframe(label=f"Preview (first {PREVIEW_ROWS} rows)", interactive=False, wrap=True,
                               max_height=400)
    file.upload(batch_columns, [file], [column], api_name="batch_columns")
    go.click(classify_csv, [file, column, auto, threshold, fast, state, cache], [preview, download, summary, cache],
             api_name="classify_csv")
    auto.input(toggle_slider, [auto], [threshold], api_visibility="private", show_progress="hidden")


def _evaluate_tab(state: gr.State, cache: gr.State, outs: list[Any], fast: gr.Checkbox) -> gr.Dropdown:
    with gr.Tab("Evaluate", id="evaluate"):
        gr.Markdown("Upload a CSV with the true labels to measure your label set. Click a misclassified row "
                    "to add it as a new example.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                file = gr.File(label="Labelled CSV", file_types=CSV_TYPES, type="filepath", elem_id="eval-file")
                with gr.Row():
                    text_col = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True)
                    label_col = gr.Dropdown(label="Label column", choices=[], allow_custom_value=True)
                go = gr.Button("Evaluate", variant="primary", elem_id="eval-run")
                metrics = gr.Markdown(elem_id="eval-metrics", label="Metrics")
            with gr.Column(scale=3):
                plot = gr.Plot(label="Confusion matrix", elem_id="eval-plot")
        wrong = gr.Dataframe(headers=["text", "gold", "predicted"], label="Misclassified (click a row)",
                             interactive=False, wrap=True, max_height=360, elem_id="eval-wrong")
        with gr.Row():
            picked = gr.Textbox(label="Selected text", scale=3, elem_id="eval-picked")
            add_dd = gr.Dropdown(label="Add as an example of", choices=[], allow_custom_value=True, scale=1)
            add_btn = gr.Button("Add as example", variant="primary", scale=1, elem_id="eval-add")
    file.upload(eval_columns, [file], [text_col, label_col], api_name="eval_columns")
    go.click(evaluate_csv, [file, text_col, label_col, fast, state, cache], [metrics, plot, wrong, cache],
             api_name="evaluate")
    wrong.select(pick_row, [wrong], [picked, add_dd], api_visibility="private")
    add_btn.click(add_one_example, [add_dd, picked, state], outs, api_visibility="undocumented")
    return add_dd
