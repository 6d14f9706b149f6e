"""The Batch tab's handlers: label every row of an uploaded file or of pasted lines, with a preview, the labelled
download, a summary that says why rows were answered unknown, and the rows kept for review.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..encoders.encoder import over_length_note
from ..io.output import answer_counts, over_length_rows
from ..language import classifier_input_note
from ..uncovered import MIN_GROUP_SIZE
from ..batch_reading import reads_together
from . import downloads, ui, uploads
from . import evaluate as ev
from . import review as rv
from . import session_classifier as sc
from . import state as st

PREVIEW_ROWS = 50


@ui.friendly
def batch_columns(file: Any) -> Any:
    """The CSV's columns for the text-column dropdown (a likely text column preselected)."""
    if not file:
        return gr.Dropdown(choices=[], value=None)
    path = ui.file_path(file)
    df = uploads.read_upload(path)
    ui.text_column_warning(df, Path(path).name)
    if note := uploads.headerless_note(df, Path(path).name):
        gr.Warning(note, duration=10)
    return gr.Dropdown(choices=[str(c) for c in df.columns], value=uploads.text_column(df))


@ui.friendly
def classify_csv(file: Any, column: str, auto_unknown: bool, threshold: float, int8: bool, encoder: str,
                 batch_aware: bool, pasted: str | None, state: dict[str, Any], cache: Any,
                 progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Label every row of a CSV, or of texts pasted one per line when no file is uploaded: preview,
    labelled-CSV download, a summary (unknowns counted), and the rows kept for review (:mod:`fewshot.app.review`);
    ``batch_aware``: the rows' in-scope scores read together (:func:`fewshot.batch_reading.batch_scores`)."""
    from_file = bool(file) or not str(pasted or "").strip()
    if from_file:
        path = ui.file_path(file, ui.NO_BATCH)
        df = uploads.read_upload(path)
        if not column:  # not chosen (an API call, or a click before the upload's columns were read)
            ui.text_column_warning(df, Path(path).name)
        column, source = uploads.text_column(df, column), Path(path).name
        # what the results are about: they stay when a later one fails
        sep, about = uploads.upload_delimiter(path), source
        if headerless := uploads.headerless_note(df, source):
            gr.Warning(headerless, duration=10)
    else:
        df, column, source, sep = uploads.pasted_rows(str(pasted)), uploads.PASTED_COLUMN, "pasted_texts", ","
        about, headerless = "Pasted texts", None
    fit = ui.fitted(state, cache, progress, int8, encoder)
    rule = ev.unknown_rule(fit.clf, auto_unknown, threshold)  # a threshold chosen on Evaluate wins
    out, blank = sc.classify_frame(fit.clf, df, column, rule, ui.progress_fn(progress, "Classifying"),
                                   batch_aware=bool(batch_aware))
    long = int((df[column].str.len() > st.MAX_INPUT_CHARS).sum())
    if long:
        gr.Warning(f"{long} text(s) are longer than {st.MAX_INPUT_CHARS:,} characters; only their start was "
                   "classified", duration=5)
    elif over := int(over_length_rows(fit.clf, df[column]).sum()):
        gr.Warning(over_length_note(over, fit.clf.encoder.max_tokens), duration=5)
    if note := classifier_input_note(fit.clf, df[column], "the rows of this file"):
        gr.Warning(note, duration=8)
    if blank:
        gr.Warning(f"{blank} row(s) have an empty '{column}' cell; they are kept with an empty label",
                   duration=5)
    multi = sc.is_multi_classifier(fit.clf)
    names = sc.added_columns(df, multi)
    label_col, conf_col, _, score_col = names
    counts = answer_counts(out[label_col], multi)  # multi-label: a row counts for each of its labels
    done = len(out) - blank
    summary = (f"**{ui.esc(about)}: {done} row{'s' if done != 1 else ''} labelled.** "
               + " · ".join(f"{ui.esc(k)}: {v}" for k, v in counts.most_common()))
    unknown = int(counts.get(fit.clf.config.unknown_label, 0))
    nearest_none = int((out[score_col] == "-inf").sum())  # closest to a "none of these" example (any rule)
    if multi:
        several = int(out[label_col].str.contains(st.LABEL_SEPARATOR, regex=False).sum())
        summary += f"  \n{several} row(s) got several labels (column `{label_col}`, joined with `;`)"
    if nearest_none:
        summary += f"  \n{nearest_none} row(s) answered *unknown*: closest to your \"none of these\" examples"
        unknown -= nearest_none
    explained = bool(nearest_none) and not unknown  # every unknown answer is explained by the line above
    together = ""
    if batch_aware and not reads_together(done):
        gr.Warning(ui.TOO_FEW_TO_READ_TOGETHER, duration=5)
    elif batch_aware and rule.mode in ("auto", "point"):
        together = ", read together with the rows most like them"
    if rule.mode == "auto" and not explained:
        summary += (f"  \n{unknown} row(s) answered *unknown*: unlike all of your examples (in-scope score{together}, "
                    f"column `{score_col}`, below the automatic threshold {rule.threshold:.2f})")
    elif rule.mode == "confidence" and not explained:
        summary += f"  \n{unknown} row(s) answered *unknown*: confidence below {rule.threshold:.0%}"
    elif rule.mode == "labels":
        summary += (f"  \n{unknown} row(s) answered *unknown*: no label reaches its threshold "
                    f"({sc.thresholds_text(fit.clf.label_thresholds_)})")
    elif rule.mode == "point" and not explained:
        summary += (f"  \n{unknown} row(s) answered *unknown*: in-scope score{together} (column `{score_col}`) below "
                    f"{rule.threshold:.2f}, the threshold chosen on the Evaluate tab or saved with the classifier")
    elif rule.note:
        summary += f"  \nAutomatic unknown is off: {ui.esc(rule.note)}"
    if blank:
        summary += f"  \n⚠ {blank} row{'s' if blank > 1 else ''} with an empty text kept unlabelled"
    if headerless:
        summary += f"  \n⚠ {ui.esc(headerless)}"
    if fit.left_out:
        summary += f"  \nℹ {ui.esc(sc.left_out_note(fit.left_out))}"
    review = rv.from_batch(out, column, names, fit.clf.config.unknown_label, header=from_file, multi=multi)
    review["label_set"], review["tier"] = fit.label_set, fit.tier  # what the answers are about (marked when changed)
    if review["total"] > len(review["rows"]):
        summary += f"  \nThe {len(review['rows']):,} least confident rows are kept for review below."
    if unknown + nearest_none >= MIN_GROUP_SIZE:
        summary += ("  \nTopics your labels miss? *Find groups among the least confident rows* (below) shows the "
                    "texts they share")
        if not batch_aware and reads_together(done) and not sc.is_multi_classifier(fit.clf):
            summary += f"; *{ui.BATCH_AWARE_LABEL}* answers a recurring one unknown more often"
    first = [label_col, conf_col, column]  # the decisive columns first: they stay visible on a narrow screen
    preview = out[first + [c for c in out.columns if c not in first]].head(PREVIEW_ROWS)
    return preview, str(downloads.write_labelled(out, source, sep)), summary, fit, review


OLD_SET_BATCH = (f"_These answers come from {ui.OLD_LABEL_SET}: press **Classify** to label the texts with the "
                 "current one._\n\n")


def batch_freshness(state: dict[str, Any], summary: Any, batch: Any, encoder: Any = None) -> Any:
    """After a change of the label set (or of multi-label mode) or of the encoder: the batch summary is marked as
    about an earlier label set, or as made with the other encoder (the preview, download and review below are its
    answers); back to that label set and encoder, the marks go."""
    if not isinstance(batch, dict) or not batch.get("label_set"):
        return gr.skip()
    stale = ui.is_stale(batch, state)
    out = ui.marked(summary, OLD_SET_BATCH, stale)
    made = ui.other_tier(batch)
    if made:
        out = ui.remark(summary, out, ui.other_tier_note(made, "batch"),
                        not stale and made != ui.current_tier(encoder, made))
    return out
