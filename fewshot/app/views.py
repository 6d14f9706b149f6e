"""The app's page: a ``gr.Blocks`` with the Labels, Classify, Batch and Evaluate tabs, wired to their handlers
(:mod:`fewshot.app.labels_tab`, :mod:`~fewshot.app.classify_tab`, :mod:`~fewshot.app.batch_tab`,
:mod:`~fewshot.app.review_tab`, :mod:`~fewshot.app.evaluate_tab`, :mod:`~fewshot.app.finetune`).

State is per browser session: the label set lives in a ``gr.State`` (the API client's session) mirrored
into ``gr.BrowserState`` (survives a page reload); the fitted classifier lives in a second ``gr.State``.
Nothing mutable is shared between sessions except the read-only encoders (:mod:`fewshot.app.warmup`).
A status line under the title says whether the encoder is still being prepared.
"""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr

from .. import __version__
from . import (batch_tab, browser, classify_tab, encoder_choice, evaluate_tab, labels_tab, review_tab, tiers, ui,
               uploads, warmup)
from . import evaluate as ev
from . import finetune as ft
from . import review as rv
from . import state as st

TABLE_HEADERS = ["label", "text"]
CSV_TYPES = [".csv", ".tsv", ".txt", ".xlsx"]
DEFAULT_THRESHOLD = 0.5
STORAGE_KEY = "fewshot-label-set"
SLIDER_EVENT: dict[str, Any] = {"trigger_mode": "always_last", "preprocess": False}
"""How a slider's value reaches its handler: on ``change``, so that a value dragged, moved with the arrow keys,
typed in its number box (each key, no Enter or Tab needed) or put back in range on leaving the box all count
(``release`` is the mouse and leaving the box only); while one is being handled only the last value waits, so a
drag is not handled pixel by pixel; not preprocessed, so that a box emptied while typing (None, which Gradio's
range check fails on) reaches the handler, which ignores it, instead of showing an error."""
STATUS_SECONDS = 2.0  # how often an open page asks whether the encoder is ready (only while it is not)
INTRO = ("Few-shot text classification: write a handful of examples per label, then classify "
         "sentences or whole CSV files. No training run, nothing leaves this session.")


def build_app() -> gr.Blocks:
    """The whole page as a ``gr.Blocks`` (:func:`fewshot.app.create_app` adds the queue)."""
    # analytics off: Gradio would otherwise call its servers at start-up (version check, usage), and the app
    # promises that nothing leaves the machine
    with gr.Blocks(title="fewshot · few-shot text classifier", delete_cache=(3600, 3600),
                   analytics_enabled=False) as demo:
        state = gr.State(st.empty_state())
        cache = gr.State(None)
        saved = gr.BrowserState(st.empty_state(), storage_key=STORAGE_KEY, secret=browser.state_secret())
        gr.Markdown(f"# fewshot <small>v{__version__}</small>\n{INTRO}")
        # per session (a component value travels with each request); every tab's encoding follows them
        with gr.Row(equal_height=False):
            encoder = gr.Radio(choices=list(tiers.CHOICES), value=tiers.FAST, label="Encoder", info=tiers.HINT,
                               elem_id="encoder-choice", scale=3, min_width=240)
            with gr.Column(scale=2, min_width=240):
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    int8 = gr.Checkbox(value=warmup.INT8_DEFAULT, label=ui.INT8_LABEL, info=ui.INT8_INFO,
                                       elem_id="int8-encoder")
        status = gr.Markdown(encoder_choice.status_md(warmup.status()), elem_id="encoder-status")
        timer = gr.Timer(STATUS_SECONDS, active=True)
        enc = [int8, encoder]
        with gr.Tabs():
            table, summary, remove_dd, multi = _labels_tab(state, cache, enc)
            outs = [state, table, summary]
            add_dd_classify = _classify_tab(state, cache, outs, enc)
            review_dd, group_dd = _batch_tab(state, cache, outs, enc)
            add_dd_eval = _evaluate_tab(state, cache, outs, enc)
        encoder.input(encoder_choice.choose_encoder, [encoder, int8], [encoder, status, timer],
                      api_visibility="private", show_progress="hidden", queue=False)
        for event in (demo.load, timer.tick):  # cheap, never queued behind a fit: answers while others wait
            event(encoder_choice.encoder_status, None, [status, timer], api_visibility="private",
                  show_progress="hidden", queue=False)
        demo.load(labels_tab.restore, [saved], [state, table, summary], api_visibility="private")
        # cheap and never queued behind a fit, so a reload right after a change finds it in the browser
        state.change(labels_tab.persist, [state],
                     [saved, remove_dd, add_dd_classify, add_dd_eval, review_dd, group_dd, multi],
                     api_visibility="private", show_progress="hidden", queue=False)
    return demo


def _labels_tab(state: gr.State, cache: gr.State, enc: list[Any]) -> tuple[Any, ...]:
    with gr.Tab("Labels", id="labels"):
        gr.Markdown("Start from a ready label set (one click), or write your own: **one row per example**.")
        with gr.Row(elem_id="example-sets"):
            names = list(uploads.example_sets())
            buttons = [gr.Button(n, size="sm", variant="secondary") for n in names]
        # the API's way in (buttons carry no value): a hidden picker whose change event loads the named set
        example_name = gr.Dropdown(choices=names, value=None, label="Example label set", visible=False)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                multi = gr.Checkbox(value=False, label=labels_tab.MULTI_LABEL, info=labels_tab.MULTI_INFO,
                                    elem_id="multi-label")
                table = gr.Dataframe(value=[["", ""]], headers=TABLE_HEADERS, datatype=["str", "str"],
                                     column_count=(2, "fixed"), interactive=True, wrap=True, max_height=480,
                                     label="Examples (edit cells; add or delete rows from the table menu)",
                                     show_search="search", elem_id="label-table")
                with gr.Row():
                    new_label = gr.Textbox(label="Label", placeholder="e.g. billing", scale=1, elem_id="new-label")
                    new_lines = gr.Textbox(label="Examples, one per line", lines=3, scale=3, elem_id="new-lines",
                                           placeholder="I was charged twice\nWhere is my invoice?")
                add_btn = gr.Button("Add examples", variant="primary")
                with gr.Row(equal_height=True):
                    remove_dd = gr.Dropdown(label="Label to rename or remove", choices=[], scale=2,
                                            allow_custom_value=True, elem_id="label-pick")
                    rename_to = gr.Textbox(label="New name (an existing one merges them)", scale=2,
                                           placeholder="e.g. refund", elem_id="rename-to")
                    with gr.Column(scale=1, min_width=140):
                        rename_btn = gr.Button("Rename label", size="sm", elem_id="rename-label")
                        remove_btn = gr.Button("Remove label", variant="stop", size="sm")
                        undo_btn = gr.Button("Undo last change", size="sm")
            with gr.Column(scale=2):
                summary = gr.Markdown(labels_tab.summary_md([]), elem_id="label-summary", label="Summary")
                check_btn = gr.Button("Re-check label set", size="sm")
                with gr.Accordion("Import · export · save", open=True):
                    import_btn = gr.UploadButton("Import CSV (text,label)", file_types=CSV_TYPES, size="sm",
                                                 elem_id="import-csv")
                    export_btn = gr.Button("Export CSV", size="sm")
                    save_btn = gr.Button("Save classifier (.zip)", size="sm")
                    load_btn = gr.UploadButton("Load classifier (.zip)", file_types=[".zip"], size="sm")
                    download = gr.File(label="Download", interactive=False, height=100, visible=False)
                _finetune_panel(state, cache, enc)
    outs = [state, table, summary]
    for name, btn in zip(names, buttons):
        btn.click(functools.partial(labels_tab.load_example, name), [state], outs, api_visibility="private",
                  show_progress="hidden")
    example_name.change(labels_tab.load_example, [example_name, state], outs, api_name="load_example")
    # a refused switch (single-label while examples carry several labels) puts the box back as the state says
    multi.input(labels_tab.set_multi_label, [multi, state], outs, api_name="set_multi_label",
                show_progress="hidden").failure(
        labels_tab.multi_box, [state], [multi], api_visibility="private", show_progress="hidden")
    # a refused action shows its message as a toast and leaves the table and summary as they were (a progress
    # overlay would replace them with an "Error" badge)
    add_btn.click(labels_tab.add_examples, [new_label, new_lines, state], outs, api_name="add_examples",
                  show_progress="hidden").success(
        lambda: "", None, new_lines, api_visibility="private")
    table.input(labels_tab.set_table, [table, state], [state, summary], api_name="set_table",
                trigger_mode="always_last")
    remove_btn.click(labels_tab.remove_label, [remove_dd, state], outs, api_name="remove_label",
                     show_progress="hidden")
    rename_btn.click(labels_tab.rename_label, [remove_dd, rename_to, state], outs, api_name="rename_label",
                     show_progress="hidden").success(lambda: ("", None), None, [rename_to, remove_dd],
                                                     api_visibility="private")
    undo_btn.click(labels_tab.undo, [state], outs, api_name="undo", show_progress="hidden")
    check_btn.click(labels_tab.show_label_set, [state], [table, summary], api_name="label_set")
    import_btn.upload(labels_tab.import_csv, [import_btn, state], outs, api_name="import_csv",
                      show_progress="hidden")
    # the download box shows once it has a file (empty, it is a large blank area under the buttons)
    exported = export_btn.click(labels_tab.export_csv, [state], [download], api_name="export_csv")
    saved = save_btn.click(labels_tab.save_classifier, [*enc, state, cache], [download, cache],
                           api_name="save_classifier")
    for event in (exported, saved):
        event.success(lambda: gr.File(visible=True), None, [download], api_visibility="private",
                      show_progress="hidden")
    load_btn.upload(labels_tab.load_classifier, [load_btn, state], [*outs, cache], api_name="load_classifier",
                    show_progress="hidden")
    return table, summary, remove_dd, multi


def _finetune_panel(state: gr.State, cache: gr.State, enc: list[Any]) -> None:
    """The "Fine-tune for my labels" accordion (:mod:`fewshot.app.finetune`): run with a progress bar, Cancel,
    Undo, and the overlap hint after each change of the label set."""
    flag = gr.State(ft.CancelFlag())  # this session's cancel switch (a fresh one per session)
    with gr.Accordion("Fine-tune for my labels", open=False, elem_id="finetune"):
        gr.Markdown("When labels are fine-grained inside one topic, adapting the encoder to your examples can help "
                    "a lot. It takes seconds to a minute; the instant classifier is kept when it does not help.")
        hint = gr.Markdown(elem_id="finetune-hint")
        budget = gr.Slider(10, ft.MAX_BUDGET_S, value=ft.DEFAULT_BUDGET_S, step=5, label="Time budget (seconds)",
                           elem_id="finetune-budget")
        with gr.Row():
            run_btn = gr.Button("Fine-tune", variant="primary", size="sm", elem_id="finetune-run")
            cancel_btn = gr.Button("Cancel", variant="stop", size="sm", elem_id="finetune-cancel")
            undo_btn = gr.Button("Undo (back to instant)", size="sm", elem_id="finetune-undo")
            hint_btn = gr.Button("Do my labels overlap?", size="sm", elem_id="finetune-check")
        # the progress bar shows here, over the status line: room for both
        result = gr.Markdown(ft.status_md(None), elem_id="finetune-result", min_height=100)
    # the quick checks first (a refusal is a toast; the panel stays as it was), and the last run's words go while
    # this one runs
    run_btn.click(ft.starting, [budget, state], [result], api_visibility="private", show_progress="hidden",
                  queue=False).success(
        ft.run_finetune, [budget, *enc, state, cache, flag], [result, cache], api_name="finetune",
        show_progress_on=[result])
    cancel_btn.click(ft.cancel_finetune, [flag], [result], api_name="cancel_finetune", queue=False,
                     show_progress="hidden")
    undo_btn.click(ft.undo_finetune, [*enc, state, cache], [result, cache], api_name="undo_finetune",
                   show_progress_on=[result])
    hint_btn.click(ft.overlap, [*enc, state, cache], [hint, cache], api_name="overlap_hint", show_progress_on=[hint])
    state.change(ft.auto_hint, [*enc, state, cache], [hint, cache], api_visibility="private",
                 show_progress="hidden", trigger_mode="always_last")
    state.change(ft.panel_mode, [state], [run_btn, cancel_btn, undo_btn, hint_btn], api_visibility="private",
                 show_progress="hidden", queue=False)


def _classify_tab(state: gr.State, cache: gr.State, outs: list[Any], enc: list[Any]) -> gr.Dropdown:
    with gr.Tab("Classify", id="classify"):
        answered = gr.State(None)  # the text the verdict is about, and the label preselected for it
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                text = gr.Textbox(label="Text", lines=4, placeholder="Paste or type a sentence…",
                                  elem_id="classify-text")
                auto = gr.Checkbox(value=True, label=ui.AUTO_LABEL, info=ui.AUTO_INFO, elem_id="classify-auto")
                threshold = gr.Slider(0, 1, value=DEFAULT_THRESHOLD, step=0.05, label="Unknown below confidence",
                                      info="answer 'unknown' when the best label is less likely than this "
                                           "(0: always pick a label)", visible=False, elem_id="classify-threshold")
                go = gr.Button("Classify", variant="primary", elem_id="classify-run")
                working = gr.Markdown(elem_id="classify-working", min_height=0)  # where "working…" shows
                with gr.Row():
                    add_dd = gr.Dropdown(label="Add this text as an example of", choices=[], scale=2,
                                         allow_custom_value=True, elem_id="classify-add")
                    add_btn = gr.Button("Add as example", size="sm")
            with gr.Column(scale=3):
                verdict = gr.Markdown("_The answer appears here._", elem_id="classify-verdict", label="Verdict")
                bars = gr.Label(num_top_classes=5, label="Top labels", elem_id="classify-bars", show_heading=False)
                matches = gr.Dataframe(headers=["label", "example", "similarity"], label="Closest examples",
                                       interactive=False, wrap=True, column_widths=["28%", "50%", "22%"],
                                       elem_id="classify-matches")
    inputs, outputs = [text, auto, threshold, *enc, state, cache], [bars, verdict, matches, cache, answered]
    # progress and a refused request show on the small line under the button: the old answer stays readable
    quiet = {"show_progress": "minimal", "show_progress_on": [working]}
    for event in (go.click(classify_tab.classify, inputs, outputs, api_name="classify", **quiet),
                  text.submit(classify_tab.classify, inputs, outputs, api_visibility="undocumented", **quiet)):
        event.success(classify_tab.suggest_label, [bars, verdict, matches], [add_dd], api_visibility="private",
                      show_progress="hidden").success(
            classify_tab.remember_label, [answered, add_dd], [answered], api_visibility="private",
            show_progress="hidden")
    # an edit makes the answer about another text: say so, and take its label out of the picker
    text.input(classify_tab.text_edited, [text, verdict, add_dd, answered], [verdict, add_dd],
               api_visibility="private", show_progress="hidden", queue=False, trigger_mode="always_last")
    threshold.change(classify_tab.reclassify, [*inputs, answered], outputs, api_visibility="private", **SLIDER_EVENT,
                     **quiet)
    auto.input(classify_tab.toggle_slider, [auto], [threshold], api_visibility="private", show_progress="hidden")
    state.change(classify_tab.auto_info, [state], [auto], api_visibility="private", show_progress="hidden", queue=False)
    for control in (auto, *enc):
        control.input(classify_tab.reclassify, [*inputs, answered], outputs, api_visibility="private", **quiet)
    add_btn.click(classify_tab.add_classified, [add_dd, text, answered, state], outs, api_name="add_example",
                  show_progress="hidden")
    # a change of the label set (or of multi-label mode) marks the answer as given with an earlier one
    state.change(classify_tab.verdict_freshness, [state, verdict, answered], [verdict], api_visibility="private",
                 show_progress="hidden", queue=False)
    return add_dd


def _batch_tab(state: gr.State, cache: gr.State, outs: list[Any], enc: list[Any]) -> gr.Dropdown:
    with gr.Tab("Batch", id="batch"):
        gr.Markdown(f"Upload a CSV (UTF-8 or UTF-16; comma, `;`, tab or `|` separated) or an Excel `.xlsx` (its "
                    f"first sheet), up to {uploads.MAX_ROWS:,} rows, and choose the text column; or paste texts, "
                    "one per line. The download adds "
                    "`label`, `confidence`, `top_3` and `in_scope_score` (multi-label: `labels`, every label joined "
                    "with `;`); cells a spreadsheet would run as a formula are prefixed with `'`.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                file = gr.File(label="CSV file", file_types=CSV_TYPES, type="filepath", elem_id="batch-file")
                column = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True, elem_id="batch-column")
                pasted = gr.Textbox("", label="…or paste texts, one per line", lines=3, max_lines=12,
                                    placeholder="I was charged twice\nThe app crashes at login",
                                    info="used when no file is uploaded", elem_id="batch-paste")
                auto = gr.Checkbox(value=True, label=ui.AUTO_LABEL, info=ui.AUTO_INFO, elem_id="batch-auto")
                threshold = gr.Slider(0, 1, value=DEFAULT_THRESHOLD, step=0.05, label="Unknown below confidence",
                                      info="0: always pick a label", visible=False, elem_id="batch-threshold")
                together = gr.Checkbox(value=False, label=ui.BATCH_AWARE_LABEL, info=ui.BATCH_AWARE_INFO,
                                       elem_id="batch-together")
                go = gr.Button("Classify", variant="primary", elem_id="batch-run")
            with gr.Column(scale=3):
                summary = gr.Markdown(elem_id="batch-summary", label="Summary")
                download = gr.File(label="Labelled CSV", interactive=False, elem_id="batch-download")
        with gr.Column(visible=False) as preview_box:  # no empty table before the first batch
            preview = gr.Dataframe(label=f"Preview (first {batch_tab.PREVIEW_ROWS} rows)", interactive=False, wrap=True,
                                   max_height=400, elem_id="batch-preview")
        batch = gr.State(rv.empty_review())
        review_box, pickers = _review_section(state, cache, outs, enc, batch)
    file.upload(batch_tab.batch_columns, [file], [column], api_name="batch_columns")
    go.click(batch_tab.classify_csv, [file, column, auto, threshold, *enc, together, pasted, state, cache],
             [preview, download, summary, cache, batch], api_name="classify_csv",
             show_progress_on=[download]).success(  # where the new file comes; the summary stays readable
        lambda: gr.Column(visible=True), None, preview_box, api_visibility="private", show_progress="hidden").success(
        review_tab.review_after_batch, [batch], review_box, api_visibility="private", show_progress="hidden")
    auto.input(classify_tab.toggle_slider, [auto], [threshold], api_visibility="private", show_progress="hidden")
    state.change(classify_tab.auto_info, [state], [auto], api_visibility="private", show_progress="hidden", queue=False)
    for trigger in (state, enc[1]):  # another label set, or the other encoder: the answers are marked
        trigger.change(batch_tab.batch_freshness, [state, summary, batch, enc[1]], [summary], api_visibility="private",
                       show_progress="hidden", queue=False)
    return pickers


def _review_section(state: gr.State, cache: gr.State, outs: list[Any], enc: list[Any],
                    batch: gr.State) -> tuple[list[Any], tuple[gr.Dropdown, gr.Dropdown]]:
    """Review the last batch: filters, the rows (lowest confidence first), a row's closest examples, and
    "add as example of …" / "this is right"; then the groups of similar unknown rows, each added at once."""
    with gr.Column(visible=False, elem_id="review") as box:
        gr.Markdown("### Review the answers\nThe least confident rows come first. Click a row to see the "
                    "examples it is closest to, then add it to your label set: with the right label, or as "
                    "it was answered (*This is right*).")
        with gr.Row(equal_height=True):
            unknown_only = gr.Checkbox(value=False, label="Only 'unknown'", elem_id="review-unknown", scale=1)
            below = gr.Slider(0, 1, value=1.0, step=0.05, label="Confidence below", elem_id="review-below",
                              info="1: all rows", scale=2)
            label = gr.Dropdown(label="Predicted label", choices=[rv.ALL_LABELS], value=rv.ALL_LABELS,
                                allow_custom_value=True,
                                elem_id="review-label", scale=2)
        empty = gr.Markdown(elem_id="review-empty", min_height=0)  # says so when no row passes the filters
        table = gr.Dataframe(headers=rv.TABLE_HEADERS, interactive=False, wrap=True, max_height=360,
                             column_widths=["10%", "24%", "18%", "48%"], label="Rows (click one)",
                             elem_id="review-table")
        picked = gr.Textbox(label="Selected text", lines=2, interactive=False, elem_id="review-picked")
        index = gr.Number(value=None, precision=0, visible=False, label="row")
        with gr.Row(equal_height=True):
            add_dd = gr.Dropdown(label="Add as an example of", choices=[], allow_custom_value=True,
                                 scale=2, elem_id="review-add-label", min_width=200)
            add_btn = gr.Button("Add as example", variant="primary", scale=1, elem_id="review-add", min_width=140)
            right_btn = gr.Button("This is right", scale=1, elem_id="review-right", min_width=140)
        near = gr.Dataframe(headers=["label", "similarity", "example"], label="Its closest examples",
                            interactive=False, wrap=True, max_height=260, column_widths=["26%", "16%", "58%"],
                            elem_id="review-near")
        gr.Markdown("#### Groups no label covers\nRows answered unknown, and the least confident others, that "
                    "resemble each other are often a topic your labels miss. Add a group as a new label, or as "
                    "*unknown (\"none of these\")* so that texts like them are answered unknown from now on, also "
                    "those that now get a wrong label.")
        groups_btn = gr.Button("Find groups among the least confident rows", elem_id="review-groups-find")
        groups = gr.Dataframe(headers=rv.GROUP_HEADERS, interactive=False, wrap=True, max_height=300,
                              column_widths=["9%", "9%", "22%", "60%"], label="Groups, largest first (click one)",
                              elem_id="review-groups")
        with gr.Row(equal_height=True):
            group_no = gr.Dropdown(label="Group", choices=[], scale=1, elem_id="review-group", min_width=100)
            group_dd = gr.Dropdown(label="Add its texts as examples of", choices=[], allow_custom_value=True,
                                   scale=2, elem_id="review-group-label", min_width=200)
            group_btn = gr.Button("Add group", variant="primary", scale=1, elem_id="review-group-add", min_width=140)
    filters = [unknown_only, below, label]
    # the API's way in (a button carries no filter values): an invisible trigger, registered first so that it
    # gets the name /review
    api_go = gr.Button(visible=False)
    api_go.click(review_tab.review, [*filters, batch], [table, batch], api_name="review", show_progress="hidden")
    for control in filters:
        event = control.change if control is below else control.input
        event(review_tab.review_shown, [*filters, batch], [table, batch, empty], api_visibility="private",
              show_progress="hidden", **SLIDER_EVENT)
    table.select(review_tab.review_pick, [batch, *enc, state, cache], [picked, index, add_dd, near, cache],
                 api_visibility="private", show_progress="hidden")
    refresh = {"fn": review_tab.review_shown, "inputs": [*filters, batch], "outputs": [table, batch, empty],
               "api_visibility": "private", "show_progress": "hidden"}
    add_btn.click(review_tab.review_add, [index, add_dd, state, batch], [*outs, batch], api_name="review_add",
                  show_progress="hidden").success(**refresh)
    right_btn.click(review_tab.review_right, [index, state, batch], [*outs, batch], api_visibility="private",
                    show_progress="hidden").success(**refresh)
    groups_btn.click(review_tab.review_groups, [batch, *enc, state, cache], [groups, batch, group_no, cache],
                     api_name="review_groups", show_progress_on=[groups])
    groups.select(review_tab.group_pick, [batch], [group_no], api_visibility="private", show_progress="hidden")
    group_btn.click(review_tab.review_add_group, [group_no, group_dd, state, batch], [*outs, batch],
                    api_name="review_add_group", show_progress="hidden").success(**refresh)
    return [table, batch, box, unknown_only, below, label, picked, index, add_dd, near, groups, group_no,
            empty], (add_dd, group_dd)


def _evaluate_tab(state: gr.State, cache: gr.State, outs: list[Any], enc: list[Any]) -> gr.Dropdown:
    with gr.Tab("Evaluate", id="evaluate"):
        results = gr.State(None)  # this session's scored rows: the tables, slider and report work from them
        gr.Markdown("Upload a CSV (or an Excel `.xlsx`) with the true labels to measure your label set (rows "
                    "labelled `unknown` are "
                    "texts none of your labels covers; multi-label: `billing; bug` in a cell). Click a confused "
                    "pair to see its rows, a row to add it "
                    "as an example; the metrics are measured again after each one you add.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                file = gr.File(label="Labelled CSV", file_types=CSV_TYPES, type="filepath", elem_id="eval-file")
                with gr.Row():
                    text_col = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True, min_width=120)
                    label_col = gr.Dropdown(label="Label column", choices=[], allow_custom_value=True, min_width=120)
                together = gr.Checkbox(value=False, label=ui.BATCH_AWARE_LABEL, info=ui.EVAL_TOGETHER_INFO,
                                       elem_id="eval-together")
                go = gr.Button("Evaluate", variant="primary", elem_id="eval-run")
                working = gr.Markdown(elem_id="eval-working", min_height=0)  # progress and refusals show here
                metrics = gr.Markdown(elem_id="eval-metrics", label="Metrics")
            with gr.Column(scale=3, min_width=300):
                plot = gr.Plot(label="Confusion (the labels with most errors)", elem_id="eval-plot")
        with gr.Row(equal_height=False):
            per_label = gr.Dataframe(headers=ev.PER_LABEL_COLUMNS, label="Labels, worst F1 first", interactive=False,
                                     wrap=True, max_height=320, elem_id="eval-per-label", scale=3, min_width=300,
                                     column_widths=["180px", "64px", "100px", "76px", "52px", "180px"])
            pairs = gr.Dataframe(headers=ev.PAIR_COLUMNS, label="Most-confused pairs (click one to see its rows)",
                                 interactive=False, wrap=True, max_height=320, elem_id="eval-pairs", scale=2,
                                 min_width=300, column_widths=["150px", "150px", "64px", "72px"])
        wrong = gr.Dataframe(headers=ev.ERROR_COLUMNS, label="Misclassified (click a row to add it as an example)",
                             interactive=False, wrap=True, max_height=360, elem_id="eval-wrong",
                             column_widths=["52%", "24%", "24%"])
        with gr.Row():
            picked = gr.Textbox(label="Selected text", scale=3, elem_id="eval-picked", min_width=240)
            add_dd = gr.Dropdown(label="Add as an example of", choices=[], allow_custom_value=True, scale=1,
                                 min_width=160)
            with gr.Column(scale=1, min_width=160):
                add_btn = gr.Button("Add as example", variant="primary", elem_id="eval-add")
                all_btn = gr.Button("Show all errors", size="sm", elem_id="eval-all-errors")
        with gr.Accordion("Unknown answers: choose the trade-off", open=True,
                          elem_id="eval-operating-point") as point_box:
            gr.Markdown("Each threshold on the in-scope score answers more or fewer texts `unknown`. The curve shows "
                        "what each would do on this file: in-scope accuracy against the share of `unknown` rows "
                        "caught (or accuracy against the share answered, when the file has no `unknown` rows).")
            with gr.Row(equal_height=False):
                curve = gr.Plot(label="Trade-off", elem_id="eval-curve", scale=3, min_width=300)
                with gr.Column(scale=2, min_width=260):
                    # wide bounds: an API client's value is checked against these (the page narrows them per file)
                    point = gr.Slider(-ev.SCORE_BOUND, ev.SCORE_BOUND, value=0, step=0.01, visible=False,
                                      label="Threshold (in-scope score)", elem_id="eval-threshold")
                    point_md = gr.Markdown(elem_id="eval-point")
                    with gr.Row():
                        use_btn = gr.Button("Use this threshold", variant="primary", size="sm", elem_id="eval-use")
                        auto_btn = gr.Button("Back to automatic", size="sm", elem_id="eval-auto")
                    in_use = gr.Markdown(elem_id="eval-in-use")
        with gr.Accordion("Download the report", open=False):
            report = gr.File(label="Per-label metrics and every row's prediction (CSV)", file_count="multiple",
                             interactive=False, elem_id="eval-report")
    quiet = {"show_progress": "minimal", "show_progress_on": [working]}  # a refusal leaves the old results
    details = [per_label, pairs, curve, point, point_md, report]
    evaluate = [evaluate_tab.evaluate_csv, [file, text_col, label_col, *enc, together, state, cache],
                [metrics, plot, wrong, cache, results]]
    file.upload(evaluate_tab.eval_columns, [file], [text_col, label_col], api_name="eval_columns", **quiet)
    go.click(*evaluate, api_name="evaluate", **quiet).success(
        evaluate_tab.eval_details, [results], details, api_name="eval_details", show_progress="hidden").success(
        evaluate_tab.eval_mode, [results], [point_box, plot], api_visibility="private", show_progress="hidden")
    pairs.select(evaluate_tab.pick_pair, [pairs, results], [wrong], api_visibility="private", show_progress="hidden")
    all_btn.click(evaluate_tab.all_errors, [results], [wrong], api_visibility="private", show_progress="hidden")
    wrong.select(evaluate_tab.pick_row, [wrong], [picked, add_dd], api_visibility="private", show_progress="hidden")
    add_btn.click(labels_tab.add_one_example, [add_dd, picked, state], outs, api_visibility="undocumented",
                  show_progress="hidden").success(*evaluate, api_visibility="private", **quiet).success(
        evaluate_tab.eval_details, [results], details, api_visibility="private", show_progress="hidden")
    point.change(evaluate_tab.preview_point, [point, results, state], [curve, point_md], api_name="preview_point",
                 show_progress="hidden", **SLIDER_EVENT)
    refresh = [evaluate_tab.eval_refresh, [results, state], [metrics, plot, wrong, per_label, pairs, curve, point_md]]
    # a change of the label set (or of multi-label mode) marks the results as about an earlier one
    freshness = [evaluate_tab.eval_freshness, [state, metrics, point_md, results, enc[1]],
                 [metrics, point_md, in_use, curve, results]]
    state.change(*freshness, api_visibility="private", show_progress="hidden", queue=False)
    enc[1].change(*freshness, api_visibility="private", show_progress="hidden", queue=False)
    use_btn.click(evaluate_tab.set_operating_point, [point, *enc, state, cache, results],
                  [in_use, cache, results, state], api_name="set_operating_point", **quiet).success(
        *refresh, api_visibility="private", show_progress="hidden")
    auto_btn.click(evaluate_tab.automatic_point, [*enc, state, cache, results], [in_use, cache, results, state],
                   api_name="automatic_operating_point", **quiet).success(*refresh, api_visibility="private",
                                                                          show_progress="hidden")
    return add_dd
