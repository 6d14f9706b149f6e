"""The app's page: a ``gr.Blocks`` with the Labels, Classify, Batch and Evaluate tabs, wired to
:mod:`fewshot.app.handlers`.

State is per browser session: the label set lives in a ``gr.State`` (the API client's session) mirrored
into ``gr.BrowserState`` (survives a page reload); the fitted classifier lives in a second ``gr.State``.
Nothing mutable is shared between sessions except the read-only encoders (:mod:`fewshot.app.warmup`).
A status line under the title says whether the encoder is still being prepared.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import gradio as gr

from .. import __version__
from . import handlers as h
from . import state as st
from . import warmup

TABLE_HEADERS = ["label", "text"]
CSV_TYPES = [".csv", ".tsv", ".txt"]
DEFAULT_THRESHOLD = 0.5
STORAGE_KEY = "fewshot-label-set"
STATUS_SECONDS = 2.0  # how often an open page asks whether the encoder is ready (only while it is not)
INTRO = ("Few-shot text classification: write a handful of examples per label, then classify "
         "sentences or whole CSV files. No training run, nothing leaves this session.")


def build_app() -> gr.Blocks:
    """The whole page as a ``gr.Blocks`` (:func:`fewshot.app.create_app` adds the queue)."""
    with gr.Blocks(title="fewshot · few-shot text classifier", delete_cache=(3600, 3600)) as demo:
        state = gr.State(st.empty_state())
        cache = gr.State(None)
        saved = gr.BrowserState(st.empty_state(), storage_key=STORAGE_KEY,
                                secret=os.environ.get("FEWSHOT_STATE_SECRET", "fewshot-local-label-set"))
        gr.Markdown(f"# fewshot <small>v{__version__}</small>\n{INTRO}")
        status = gr.Markdown(h.status_md(warmup.status()), elem_id="encoder-status")
        timer = gr.Timer(STATUS_SECONDS, active=True)
        # per session (a component value travels with each request); every tab's encoding follows it
        int8 = gr.Checkbox(value=st.INT8_DEFAULT, label=h.INT8_LABEL, info=h.INT8_INFO, elem_id="int8-encoder")
        with gr.Tabs():
            table, summary, remove_dd = _labels_tab(state, cache, int8)
            outs = [state, table, summary]
            add_dd_classify = _classify_tab(state, cache, outs, int8)
            _batch_tab(state, cache, int8)
            add_dd_eval = _evaluate_tab(state, cache, outs, int8)
        for event in (demo.load, timer.tick):  # cheap, never queued behind a fit: answers while others wait
            event(h.encoder_status, None, [status, timer], api_visibility="private", show_progress="hidden",
                  queue=False)
        demo.load(h.restore, [saved], [state, table, summary], api_visibility="private")
        # cheap and never queued behind a fit, so a reload right after a change finds it in the browser
        state.change(h.persist, [state], [saved, remove_dd, add_dd_classify, add_dd_eval],
                     api_visibility="private", show_progress="hidden", queue=False)
    return demo


def _labels_tab(state: gr.State, cache: gr.State, int8: gr.Checkbox) -> tuple[Any, ...]:
    with gr.Tab("Labels", id="labels"):
        gr.Markdown("Start from a ready label set (one click), or write your own: **one row per example**.")
        with gr.Row(elem_id="example-sets"):
            names = list(st.example_sets())
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
                summary = gr.Markdown(h.summary_md([]), elem_id="label-summary", label="Summary")
                check_btn = gr.Button("Re-check label set", size="sm")
                with gr.Accordion("Import · export · save", open=True):
                    import_btn = gr.UploadButton("Import CSV (text,label)", file_types=CSV_TYPES, size="sm")
                    export_btn = gr.Button("Export CSV", size="sm")
                    save_btn = gr.Button("Save classifier (.zip)", size="sm")
                    load_btn = gr.UploadButton("Load classifier (.zip)", file_types=[".zip"], size="sm")
                    download = gr.File(label="Download", interactive=False)
    outs = [state, table, summary]
    for name, btn in zip(names, buttons):
        btn.click(functools.partial(h.load_example, name), [state], outs, api_visibility="private")
    example_name.change(h.load_example, [example_name, state], outs, api_name="load_example")
    add_btn.click(h.add_examples, [new_label, new_lines, state], outs, api_name="add_examples").success(
        lambda: "", None, new_lines, api_visibility="private")
    table.input(h.set_table, [table, state], [state, summary], api_name="set_table", trigger_mode="always_last")
    remove_btn.click(h.remove_label, [remove_dd, state], outs, api_name="remove_label")
    undo_btn.click(h.undo, [state], outs, api_name="undo")
    check_btn.click(h.show_label_set, [state], [table, summary], api_name="label_set")
    import_btn.upload(h.import_csv, [import_btn, state], outs, api_name="import_csv")
    export_btn.click(h.export_csv, [state], [download], api_name="export_csv")
    save_btn.click(h.save_classifier, [int8, state, cache], [download, cache], api_name="save_classifier")
    load_btn.upload(h.load_classifier, [load_btn, state], [*outs, cache], api_name="load_classifier")
    return table, summary, remove_dd


def _classify_tab(state: gr.State, cache: gr.State, outs: list[Any], int8: gr.Checkbox) -> gr.Dropdown:
    with gr.Tab("Classify", id="classify"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                text = gr.Textbox(label="Text", lines=4, placeholder="Paste or type a sentence…",
                                  elem_id="classify-text")
                auto = gr.Checkbox(value=True, label=h.AUTO_LABEL, info=h.AUTO_INFO, elem_id="classify-auto")
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
    inputs, outputs = [text, auto, threshold, int8, state, cache], [bars, verdict, matches, cache]
    for event in (go.click(h.classify, inputs, outputs, api_name="classify"),
                  text.submit(h.classify, inputs, outputs, api_visibility="undocumented")):
        event.success(h.suggest_label, [bars], [add_dd], api_visibility="private", show_progress="hidden")
    threshold.release(h.reclassify, inputs, outputs, api_visibility="private", show_progress="minimal")
    auto.input(h.toggle_slider, [auto], [threshold], api_visibility="private", show_progress="hidden")
    auto.input(h.reclassify, inputs, outputs, api_visibility="private", show_progress="minimal")
    int8.input(h.reclassify, inputs, outputs, api_visibility="private", show_progress="minimal")
    add_btn.click(h.add_one_example, [add_dd, text, state], outs, api_name="add_example")
    return add_dd


def _batch_tab(state: gr.State, cache: gr.State, int8: gr.Checkbox) -> None:
    with gr.Tab("Batch", id="batch"):
        gr.Markdown(f"Upload a CSV (UTF-8 or UTF-16; comma, `;`, tab or `|` separated; up to {st.MAX_ROWS:,} "
                    "rows), choose the text column, classify. The download adds `label`, `confidence`, `top_3` "
                    "and `in_scope_score`; cells a spreadsheet would run as a formula are prefixed with `'`.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                file = gr.File(label="CSV file", file_types=CSV_TYPES, type="filepath", elem_id="batch-file")
                column = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True, elem_id="batch-column")
                auto = gr.Checkbox(value=True, label=h.AUTO_LABEL, info=h.AUTO_INFO, elem_id="batch-auto")
                threshold = gr.Slider(0, 1, value=DEFAULT_THRESHOLD, step=0.05, label="Unknown below confidence",
                                      info="0: always pick a label", visible=False, elem_id="batch-threshold")
                go = gr.Button("Classify CSV", variant="primary", elem_id="batch-run")
            with gr.Column(scale=3):
                summary = gr.Markdown(elem_id="batch-summary", label="Summary")
                download = gr.File(label="Labelled CSV", interactive=False, elem_id="batch-download")
        preview = gr.Dataframe(label=f"Preview (first {h.PREVIEW_ROWS} rows)", interactive=False, wrap=True,
                               max_height=400)
    file.upload(h.batch_columns, [file], [column], api_name="batch_columns")
    go.click(h.classify_csv, [file, column, auto, threshold, int8, state, cache], [preview, download, summary, cache],
             api_name="classify_csv")
    auto.input(h.toggle_slider, [auto], [threshold], api_visibility="private", show_progress="hidden")


def _evaluate_tab(state: gr.State, cache: gr.State, outs: list[Any], int8: gr.Checkbox) -> gr.Dropdown:
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
    file.upload(h.eval_columns, [file], [text_col, label_col], api_name="eval_columns")
    go.click(h.evaluate_csv, [file, text_col, label_col, int8, state, cache], [metrics, plot, wrong, cache],
             api_name="evaluate")
    wrong.select(h.pick_row, [wrong], [picked, add_dd], api_visibility="private")
    add_btn.click(h.add_one_example, [add_dd, picked, state], outs, api_visibility="undocumented")
    return add_dd
