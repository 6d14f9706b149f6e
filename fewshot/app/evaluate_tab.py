"""The Evaluate tab's handlers: score a labelled file (:mod:`fewshot.app.evaluate`) and show its metrics, tables
and trade-off curve, and choose the operating point of the unknown rule on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ..errors import FewShotError
from ..text import same_name_as
from . import evaluate as ev
from . import session_classifier as sc
from . import state as st
from . import tiers, ui, uploads


@ui.friendly
def eval_columns(file: Any) -> tuple[Any, Any]:
    """Text and label column dropdowns for an uploaded labelled CSV."""
    if not file:
        return gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None)
    path = ui.file_path(file, ui.NO_LABELLED)
    df = uploads.read_upload(path)
    cols = [str(c) for c in df.columns]
    label = uploads.label_column(cols)
    ui.text_column_warning(df, Path(path).name, label)
    headerless = uploads.headerless_note(df, Path(path).name, evaluated=True)
    if headerless:
        gr.Warning(headerless, duration=10)
    if label is None:
        gr.Warning("no label column found (e.g. 'label'); choose the column that holds the true labels"
                   + ("" if headerless else uploads.header_hint(cols)))
    return (gr.Dropdown(choices=cols, value=uploads.text_column(df, exclude=label)),
            gr.Dropdown(choices=cols, value=label))


def file_warnings(res: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """Evaluate's warnings about the file itself: labels the label set lacks, rows skipped (the first few named by
    their row as a spreadsheet shows the file, as the command line names them), a first row read as the header."""
    lines = []
    unseen = summary["unseen_labels"]
    if unseen:
        def named(lab: str) -> str:
            same = same_name_as(lab, res["classes"])
            return ui.esc(lab) + (f" (did you mean {ui.esc(same)}?)" if same else "")

        lines.append("⚠ labels in the file but not in your label set: " + ", ".join(map(named, unseen[:10]))
                     + (f" and {len(unseen) - 10} more" if len(unseen) > 10 else ""))
    if res["skipped"]:
        lines.append(f"⚠ {res['skipped']} row(s) without text or label were skipped"
                     + rows_named(res.get("skipped_rows") or [], res["skipped"]))
    if res.get("headerless"):
        lines.append(f"⚠ {ui.esc(res['headerless'])}")
    return lines


def rows_named(rows: list[int], total: int) -> str:
    """" (rows 4, 9 and 12)": the rows ``rows`` (the first of ``total``) by number, "" when none is known."""
    if not rows:
        return ""
    if len(rows) == 1 and total == 1:
        return f" (row {rows[0]})"
    listed = [str(r) for r in rows]
    more = total - len(rows)
    if more > 0:
        return f" (rows {', '.join(listed)} and {more} more)"
    return f" (rows {', '.join(listed[:-1])} and {listed[-1]})"


def of_file(res: dict[str, Any]) -> str:
    """" of **FILE**": which upload an evaluation's results are about (they stay in place when a later one fails)."""
    return f" of **{ui.esc(res['source'])}**" if res.get("source") else ""


def eval_metrics_md(res: dict[str, Any]) -> str:
    """The headline: accuracy and macro-F1 as the labels alone decide, then with the unknown rule in use
    (multi-label: micro / macro F1 and subset accuracy of the answered label sets)."""
    if res.get("multi"):
        return multi_metrics_md(res)
    s = ev.summary(res)
    lines = [f"**Accuracy {s['accuracy']:.1%} · macro-F1 {s['macro_f1']:.3f}** on {s['n']} rows{of_file(res)} "
             f"(best label, no unknown answers)"]
    if s["threshold"] is not None:
        how = "chosen on this tab" if s["mode"] == "chosen" else "automatic, from your examples"
        rule = (f"**With the unknown rule** ({how}; {s['answered_unknown']} row(s) answered unknown): "
                f"accuracy {ui.pct(s['accuracy_rule'], 1)}")
        if s["n_oos"]:
            rule += (f" · in-scope accuracy {ui.pct(s['in_scope_accuracy_rule'], 1)} · out-of-scope recall "
                     f"{ui.pct(s['oos_recall'])} ({s['n_oos']} row(s) labelled `{ui.esc(res['unknown_label'])}`)")
        lines.append(rule)
    if "oos_auroc" in s:
        lines.append(f"For any threshold: AUROC {s['oos_auroc']:.3f} (the chance that an in-scope row scores above a "
                     f"row labelled `{ui.esc(res['unknown_label'])}`) · out-of-scope recall "
                     f"{s['oos_recall_at_cost']:.0%} at a cost of at most {100 * s['cost']:g} points of in-scope "
                     f"accuracy · FPR@95 {s['oos_fpr_at_95']:.2f}")
    if s["threshold"] is None and res.get("auto_note"):
        lines.append(f"_No unknown rule: {ui.esc(res['auto_note'])}._")
    if res.get("batch_aware"):
        lines.append("In-scope scores read together with the rows most like them (as *Batch* reads a file with "
                     f"*{ui.BATCH_AWARE_LABEL}*).")
    lines.append(f"{s['errors']} row(s) misclassified (with the unknown rule in use); the worst labels and the "
                 "most-confused pairs are below.")
    return "  \n".join(lines + file_warnings(res, s))


def multi_metrics_md(res: dict[str, Any]) -> str:
    """The multi-label headline: micro-F1, macro-F1, subset accuracy (exact set match), how the sets were answered."""
    s = ev.multi_summary(res)
    if res["rule"] == "labels":
        rule = (f"every label above its threshold ({sc.thresholds_text(res['label_thresholds'])}), unknown when "
                "none is")
    elif res["rule"] == "point":
        rule = f"unknown below the in-scope score {res['rule_threshold']:.2f} chosen on this tab"
    else:
        rule = "every label above its threshold"
    lines = [f"**Micro-F1 {s['micro_f1']:.3f} · macro-F1 {s['macro_f1']:.3f} · subset accuracy "
             f"{s['subset_accuracy']:.1%}** on {s['n']} texts{of_file(res)} ({s['several']} with several labels; "
             "subset accuracy: the predicted labels equal the true ones exactly)",
             f"Answers: {rule}; {s['answered_unknown']} "
             "text(s) answered unknown.",
             f"{s['errors']} text(s) not matched exactly; the per-label F1 and the most frequent wrong sets are below."]
    return "  \n".join(lines + file_warnings(res, s))


MULTI_CURVE_NOTE = ("_The trade-off curve is drawn for single-label classifiers. In multi-label mode a text is "
                    "answered unknown when no label reaches its threshold (thresholds chosen on your examples)._")


@ui.friendly
def evaluate_csv(file: Any, text_col: str, label_col: str, int8: bool, encoder: str, batch_aware: bool,
                 state: dict[str, Any], cache: Any, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Accuracy (without and with the unknown rule), a confusion view of the labels with most errors and the
    misclassified rows on a labelled CSV; the scored rows stay in the session for the tables below.
    ``batch_aware``: the rows' in-scope scores read together, as Batch does with that option."""
    path = ui.file_path(file, ui.NO_LABELLED)
    df = uploads.read_upload(path)
    cols = [str(c) for c in df.columns]
    label_col = uploads.label_column(cols, label_col)
    if not text_col:
        ui.text_column_warning(df, Path(path).name, label_col)
    text_col = uploads.text_column(df, text_col, exclude=label_col)
    if label_col is None:
        raise FewShotError(f"choose the label column (the true labels); the columns are "
                           f"{cols}{uploads.header_hint(cols)}")
    if text_col == label_col:
        raise FewShotError("the text column and the label column must differ")
    if note := uploads.foreign_labels_note(df, label_col, state, Path(path).name):  # said before the file is scored
        gr.Warning(note, duration=10)
    if headerless := uploads.headerless_note(df, Path(path).name, evaluated=True):
        gr.Warning(headerless, duration=10)
    fit = ui.fitted(state, cache, progress, int8, encoder)
    res = ev.run(fit.clf, df, text_col, label_col, ui.progress_fn(progress, "Classifying"),
                 batch_aware=bool(batch_aware))
    if batch_aware and not res.get("batch_aware"):
        gr.Warning(ui.TOO_FEW_TO_READ_TOGETHER, duration=5)
    res["source"], res["headerless"] = Path(path).name, headerless or ""
    res["label_set"], res["tier"] = fit.label_set, fit.tier  # what it measured (a threshold is chosen for that)
    return eval_metrics_md(res), ev.confusion_figure(res), ev.errors(res), fit, res


OLD_SET_EVAL = f"_These results are about {ui.OLD_LABEL_SET}: press **Evaluate** to measure the current one._\n\n"
OLD_SET_POINT = (f"_This curve is about {ui.OLD_LABEL_SET}: press **Evaluate** again to choose a threshold for the "
                 "current one._\n\n")


def eval_freshness(state: dict[str, Any], metrics: Any, point: Any, res: Any, encoder: Any = None
                   ) -> tuple[Any, ...]:
    """After a change of the label set (or of multi-label mode, or of the operating point kept with it) or of the
    encoder: the metrics and the trade-off point are marked as about an earlier label set or as made with the other
    encoder, and the line saying which threshold is in use is cleared; back to the measured label set and encoder,
    the marks go. When the threshold in use for the measured label set changed (Undo, *Back to automatic*), the
    metrics, the curve and the results say the one really in use. Returns (metrics, point line, in-use line, curve,
    results)."""
    skip = (gr.skip(),) * 5
    if not isinstance(res, dict) or not res.get("label_set"):
        return skip
    stale = ui.is_stale(res, state)
    made = ui.other_tier(res)
    now = ui.current_tier(encoder, made or tiers.FAST)
    elsewhere = bool(made) and made != now and not stale
    if not stale and not res.get("multi") and made and "scores" in res:
        chosen = st.point_in_use(state, made, res["label_set"])  # not stale: the results' label set is the state's
        if chosen != res.get("chosen"):  # the point in use is not the one these results show: say the real one
            res = {**res, "chosen": chosen}
            value = ev.active_threshold(res)
            mark = ui.other_tier_note(made, "eval") if elsewhere else ""
            line = ev.point_md(res, value) if value is not None and point else ""
            in_use = "" if elsewhere else point_in_use_md(chosen)
            return (mark + eval_metrics_md(res), ((ui.other_tier_note(made, "point") if elsewhere else "") + line),
                    in_use, ev.curve_figure(res), res)
    metrics_out = ui.marked(metrics, OLD_SET_EVAL, stale)
    point_out = ui.marked(point, OLD_SET_POINT, stale) if point else gr.skip()
    if made:
        metrics_out = ui.remark(metrics, metrics_out, ui.other_tier_note(made, "eval"), elsewhere)
        if point:
            point_out = ui.remark(point, point_out, ui.other_tier_note(made, "point"), elsewhere)
    return metrics_out, point_out, "" if stale or elsewhere else gr.skip(), gr.skip(), gr.skip()


@ui.friendly
def eval_details(res: Any) -> tuple[Any, ...]:
    """After an evaluation: per-label metrics worst first, the most-confused pairs, the unknown-rule curve,
    the threshold slider, the point's numbers and the report files."""
    res = _eval_result(res)
    if res.get("multi"):
        return (ev.per_label(res), ev.confused_pairs(res), None, gr.Slider(visible=False), MULTI_CURVE_NOTE,
                ev.write_report(res, res.get("source", "evaluation")))
    low, high, value = ev.slider_range(res)
    slider = gr.Slider(minimum=low, maximum=high, value=value, step=0.01, interactive=True, visible=True)
    return (ev.per_label(res), ev.confused_pairs(res), ev.curve_figure(res), slider, ev.point_md(res, value),
            ev.write_report(res, res.get("source", "evaluation")))


def _eval_result(res: Any) -> dict[str, Any]:
    if not isinstance(res, dict) or "scores" not in res:
        raise FewShotError("evaluate a labelled CSV first (upload it above and press Evaluate)")
    return res


def eval_mode(res: Any) -> tuple[Any, Any]:
    """After an evaluation: the trade-off section only for a single-label classifier, and the plot's title."""
    multi = isinstance(res, dict) and bool(res.get("multi"))
    return (gr.Accordion(visible=not multi),
            gr.Plot(label="Precision, recall and F1 per label (worst first)" if multi
                    else "Confusion (the labels with most errors)"))


def pick_pair(pairs: Any, res: Any, evt: gr.SelectData) -> Any:
    """Clicking a confused pair shows its rows in the misclassified table."""
    df = pairs if isinstance(pairs, pd.DataFrame) else pd.DataFrame(pairs)
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    if df.empty or row is None or row >= len(df) or not isinstance(res, dict) or "scores" not in res:
        return gr.skip()
    return ev.errors(res, str(df.iloc[row, 0]), str(df.iloc[row, 1]))


def all_errors(res: Any) -> Any:
    """Back to every misclassified row."""
    return ev.errors(res) if isinstance(res, dict) and "scores" in res else gr.skip()


def eval_refresh(res: Any, state: Any = None) -> tuple[Any, ...]:
    """After the operating point changed: the metrics, tables and curve under the new unknown rule (no
    re-encoding); still marked when they are about an earlier label set."""
    if not isinstance(res, dict) or "scores" not in res:
        return tuple(gr.skip() for _ in range(7))
    value = None if res.get("multi") else ev.active_threshold(res)
    stale = state is not None and ui.is_stale(res, state)
    point = ev.point_md(res, value) if value is not None else ""
    return ((OLD_SET_EVAL if stale else "") + eval_metrics_md(res), ev.confusion_figure(res), ev.errors(res),
            ev.per_label(res), ev.confused_pairs(res), ev.curve_figure(res),
            (OLD_SET_POINT if stale and point else "") + point)


@ui.friendly
def preview_point(threshold: float, res: Any, state: Any = None) -> tuple[Any, str]:
    """What the slider's threshold would do on the evaluated rows: the curve with the point marked, one line (marked
    when the rows were scored with an earlier label set). Runs as the value is typed or moved by key or mouse; an
    emptied number box (None) changes nothing."""
    if threshold is None:
        return gr.skip(), gr.skip()
    res = _eval_result(res)
    value = ev.check_threshold(threshold)
    stale = state is not None and ui.is_stale(res, state)
    return ev.curve_figure(res, value), (OLD_SET_POINT if stale else "") + ev.point_md(res, value)


def operating_point_md(fit: sc.Fitted) -> str:
    """Which unknown rule Classify, Batch and *Save classifier* use in this session."""
    return point_in_use_md(fit.clf.config.score_threshold)


def point_in_use_md(chosen: float | None) -> str:
    """The in-use line for the operating point ``chosen`` (None: the automatic threshold)."""
    if chosen is None:
        return ("Unknown rule in use: **automatic** (from your examples). Classify and Batch apply it when "
                "*Unknown: automatic* is ticked.")
    return (f"Unknown rule in use: **threshold {chosen:.2f}** chosen here (in-scope score). Classify and Batch "
            "apply it when *Unknown: automatic* is ticked, and *Save classifier* saves it.")


@ui.friendly
def set_operating_point(threshold: float, int8: bool, encoder: str, state: dict[str, Any], cache: Any,
                        res: Any = None) -> tuple[Any, ...]:
    """Use ``threshold`` (an in-scope score) as this session's unknown rule instead of the automatic one. Refused
    unless the evaluation it was chosen on measured the current label set (the same examples, labels and mode) with
    the current encoder model, and on a multi-label classifier (each label has its own threshold there)."""
    value = ev.check_threshold(threshold)
    check_operating_point(res, state, encoder)
    fit = ui.fitted(state, cache, None, int8, encoder)  # single-label: check_operating_point refused multi-label mode
    fit.clf.set_params(score_threshold=value)
    res = {**res, "chosen": value}
    gr.Info(f"Unknown below {value:.2f} from now on: {ev.point_md(res, value)}".replace("**", ""), duration=5)
    # kept with the label set (and so in the browser and the undo history), for the encoder it was chosen with
    return operating_point_md(fit), fit, res, st.with_point(state, value, fit.tier)


MULTI_POINT = ("a threshold on the in-scope score is chosen for single-label classifiers; in multi-label mode each "
               "label has its own threshold, chosen on your examples")


def check_operating_point(res: Any, state: dict[str, Any], encoder: Any) -> None:
    """Refuse to apply a threshold chosen on evaluation results that are not about the current classifier: no
    results, results of a multi-label classifier or label set, of an earlier label set, or of the other encoder."""
    res = _eval_result(res)
    if res.get("multi") or st.is_multi(state):
        raise FewShotError(MULTI_POINT)
    if ui.is_stale(res, state) or not res.get("label_set"):
        raise FewShotError("these evaluation results are about an earlier label set (it changed since): press "
                           "Evaluate again to choose a threshold for the current one")
    tier = tiers.check(encoder)
    if res.get("tier", tier) != tier:
        raise FewShotError(f"these evaluation results were measured with the {res['tier']} encoder: press Evaluate "
                           f"again to choose a threshold for the {tier} one")


@ui.friendly
def automatic_point(int8: bool, encoder: str, state: dict[str, Any], cache: Any, res: Any = None) -> tuple[Any, ...]:
    """Back to the automatic unknown threshold (derived from the examples)."""
    state = st.with_point(state, None, tiers.check(encoder))
    fit = ui.fitted(state, cache, None, int8, encoder)  # applies the state's point: none, the automatic threshold
    if isinstance(res, dict) and "scores" in res:
        res = {**res, "chosen": None}
    return operating_point_md(fit), fit, res, state


def pick_row(table: Any, evt: gr.SelectData) -> tuple[str, Any]:
    """Fill the 'add as example' fields from the clicked misclassified row."""
    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    if df.empty or row is None or row >= len(df):
        return "", gr.Dropdown()
    text, gold = str(df.iloc[row, 0]), str(df.iloc[row, 1])
    return text, gr.Dropdown(value=gold)
