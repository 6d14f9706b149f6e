"""The Classify tab's handlers: one text's answer in plain words (the label, or unknown and why), its closest
examples, the label preselected to add the text as an example, and the marks when the text or the label set changed.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from ..encoders.encoder import over_length_note
from ..errors import FewShotError
from ..io.output import over_length_rows
from ..language import classifier_input_note
from . import evaluate as ev
from . import labels_tab, tiers, ui
from . import session_classifier as sc
from . import state as st

TECH = "<details><summary>Technical details</summary>\n\n{}\n\n</details>"


def distinct_percents(value: float, threshold: float) -> tuple[str, str]:
    """``value`` and ``threshold`` as percentages with the fewest decimals (up to 4) that tell them apart, so that
    a confidence just below the threshold does not read as equal to it (99.96 % below 100 %, not 100 % below
    100 %)."""
    for digits in range(5):
        shown, floor = f"{value:.{digits}%}", f"{threshold:.{digits}%}"
        if shown != floor:
            return shown, floor
    return f"{value:.0%}", f"{threshold:.0%}"


def verdict_md(pred: Any, rule: sc.Unknown, unknown_label: str) -> str:
    """The verdict in plain words first (the label or unknown, and why), the figures in a details block."""
    best, conf = ui.esc(pred.top[0][0]), pred.top[0][1]
    if pred.label == unknown_label and pred.score == float("-inf"):
        return (f"### unknown\nThe text is closest to your \"none of these\" examples (label "
                f"**{ui.esc(unknown_label)}**). Best guess: **{best}** ({conf:.0%}).")
    if pred.label == unknown_label and rule.mode == "point":  # a threshold chosen on Evaluate
        return (f"### unknown\nThe text looks unlike your examples. Best guess: **{best}** ({conf:.0%}).\n\n"
                + TECH.format(f"in-scope score **{pred.score:.2f}** is below the threshold **{rule.threshold:.2f}** "
                              "chosen on the Evaluate tab (or saved with the classifier)"))
    if pred.label == unknown_label and rule.mode == "auto":
        return (f"### unknown\nThe text looks unlike all of your examples. Best guess: **{best}** ({conf:.0%}). "
                "If it belongs to a label, add it as an example.\n\n"
                + TECH.format(f"in-scope score **{pred.score:.2f}** is below the automatic threshold "
                              f"**{rule.threshold:.2f}** derived from your examples (by cross-validation)"))
    if pred.label == unknown_label and rule.mode == "confidence":
        shown, floor = distinct_percents(conf, rule.threshold)
        return f"### unknown\nBest guess **{best}** at {shown}, below the threshold of {floor}."
    alternatives = [a for a in (getattr(pred, "alternatives", None) or []) if str(a) != pred.label]
    if getattr(pred, "ambiguous", False) and alternatives:
        other = ui.esc(alternatives[0][0] if isinstance(alternatives[0], (tuple, list)) else alternatives[0])
        out = (f"### {ui.esc(pred.label)} or {other}?\nThe text fits both about equally well "
               f"({pred.confidence:.0%} for {ui.esc(pred.label)}); an example that tells them apart helps.")
    else:
        out = f"### {ui.esc(pred.label)}\n{pred.confidence:.0%} confident"
    if rule.mode == "auto":
        out += "\n\n" + TECH.format(f"confidence {pred.confidence:.0%} · in-scope score {pred.score:.2f} "
                                     f"(automatic unknown threshold {rule.threshold:.2f})")
    elif rule.mode == "point":
        out += "\n\n" + TECH.format(f"confidence {pred.confidence:.0%} · in-scope score {pred.score:.2f} "
                                     f"(unknown threshold {rule.threshold:.2f}, chosen on the Evaluate tab)")
    elif rule.note:
        out += f"  \n_Automatic unknown is off: {ui.esc(rule.note)}._"
    return out


MULTI_ANSWER = "labels above their thresholds"  # how a multi-label answer of several labels reads


def multi_verdict_md(pred: Any, rule: sc.Unknown, thresholds: dict[str, float], unknown_label: str) -> str:
    """A multi-label answer: every label above its threshold with its probability (or unknown, and why), the
    figures in a details block."""
    shown = ", ".join(f"{ui.esc(lab)} {p:.0%} (threshold {thresholds.get(lab, float('nan')):.0%})"
                      for lab, p in pred.top[:5])
    tech = TECH.format(f"per-label probabilities (independent): {shown} · in-scope score {pred.score:.2f}")
    best, conf = ui.esc(pred.top[0][0]), pred.top[0][1]
    if not pred.labels:
        if rule.mode == "labels":
            why = f"No label reaches its threshold ({sc.thresholds_text(thresholds)})."
        elif rule.mode == "point":
            why = (f"The in-scope score {pred.score:.2f} is below the threshold {rule.threshold:.2f} chosen on the "
                   "Evaluate tab (or saved with the classifier).")
        else:
            shown, floor = distinct_percents(conf, rule.threshold)
            return (f"### unknown\nThe most probable label is below the threshold of {floor}. Best guess: **{best}** "
                    f"({shown}).\n\n{tech}")
        return f"### unknown\n{why} Best guess: **{best}** ({conf:.0%}).\n\n{tech}"
    probs = dict(pred.top)
    head = " · ".join(ui.esc(lab) for lab in pred.labels)
    each = ", ".join(f"**{ui.esc(lab)}** {probs.get(lab, pred.confidence):.0%}" for lab in pred.labels)
    n = len(pred.labels)
    above = f"{n} {MULTI_ANSWER}" if n > 1 else "1 label above its threshold"
    out = f"### {head}\n{above}: {each}"
    lab = pred.labels[0]
    if n == 1 and probs.get(lab, conf) < thresholds.get(lab, 0.0):  # named only because it is the most probable
        out = (f"### {head}\nthe most probable label ({probs.get(lab, conf):.0%}), although no label reaches its "
               f"threshold ({thresholds[lab]:.0%}); tick *Unknown: automatic* to answer unknown then")
    return out + "\n\n" + tech


LIST_LINES = 3
"""A text with this many non-empty lines in Classify may be a list pasted by mistake: the app says how to classify
each line (Batch takes pasted lines)."""


@ui.friendly
def classify(text: str, auto_unknown: bool, threshold: float, int8: bool, encoder: str, state: dict[str, Any],
             cache: Any) -> tuple[Any, ...]:
    """Top labels with probabilities, a verdict (or unknown, with why), and the matched support examples."""
    if not str(text or "").strip():
        raise FewShotError("type a sentence to classify")
    fit = ui.fitted(state, cache, None, int8, encoder)
    rule = ev.unknown_rule(fit.clf, auto_unknown, threshold)  # a threshold chosen on Evaluate wins
    if len(str(text)) > st.MAX_INPUT_CHARS:
        gr.Warning(f"the text is {len(str(text)):,} characters long; only the first {st.MAX_INPUT_CHARS:,} "
                   "are classified", duration=5)
    elif over_length_rows(fit.clf, pd.Series([str(text)]))[0]:
        gr.Warning(over_length_note(1, fit.clf.encoder.max_tokens), duration=5)
    if note := classifier_input_note(fit.clf, [str(text)], "this text"):
        gr.Warning(note, duration=8)
    if (lines := sum(1 for line in str(text).splitlines() if line.strip())) >= LIST_LINES:
        gr.Info(f"This text has {lines} lines and was classified as one text; to classify each line on its own, "
                "paste them into the Batch tab", duration=8)
    pred = sc.predict_text(fit.clf, str(text), rule)
    bars = dict(pred.top)
    if sc.is_multi_classifier(fit.clf):  # each answered label with its own closest examples
        verdict = multi_verdict_md(pred, rule, fit.clf.label_thresholds_, fit.clf.config.unknown_label)
        matches = [[lab, m.text, round(m.similarity, 3)] for lab in pred.labels
                   for m in pred.label_matches.get(lab, [])[:3]] or \
            [[m.label, m.text, round(m.similarity, 3)] for m in pred.matches]
    else:
        verdict = verdict_md(pred, rule, fit.clf.config.unknown_label)
        matches = [[m.label, m.text, round(m.similarity, 3)] for m in pred.matches]
    # what the verdict is about: the text, and the label set it was answered with
    return bars, verdict, matches, fit, {"text": str(text), "label_set": fit.label_set}


def reclassify(text: str, auto_unknown: bool, threshold: float, int8: bool, encoder: str, state: dict[str, Any],
               cache: Any, answered: Any = None) -> tuple[Any, ...]:
    """Re-run :func:`classify` when the unknown rule or the encoder changes; silent with nothing to classify. The
    label preselected for the text stays recorded while the text is the one classified."""
    if (not str(text or "").strip() or len(st.labels_of(st.state_rows(state), st.is_multi(state))) < 2
            or tiers.problem(tiers.choice(encoder)) or (threshold is None and not auto_unknown)):  # a box emptied
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    *out, now = classify(text, auto_unknown, threshold, int8, encoder, state, cache)
    if isinstance(answered, dict) and same_text(answered.get("text"), text):
        now = {**now, "label": answered.get("label")}
    return (*out, now)


STALE_NOTE = "_The text was edited after this answer: press **Classify** to answer the new text._\n\n"
OLD_SET_VERDICT = f"_Answered with {ui.OLD_LABEL_SET}: press **Classify** to answer with the current one._\n\n"


def remember_label(answered: Any, label: Any) -> Any:
    """After Classify preselected a label: record it with the text it was chosen for."""
    return {**answered, "label": str(label)} if isinstance(answered, dict) and label else gr.skip()


def text_edited(text: str, verdict: str, label: Any, answered: Any) -> tuple[Any, Any]:
    """The Classify text was edited: the verdict is marked as about the previous text and the label preselected
    for that text is taken out of the picker (a label the person chose stays), so that *Add as example* cannot file
    the new text under the old answer; back to the classified text, both come back."""
    if not isinstance(answered, dict) or not isinstance(verdict, str):
        return gr.skip(), gr.skip()
    if same_text(text, answered.get("text")):
        restore = answered.get("label") and not label
        return ui.marked(verdict, STALE_NOTE, False), (gr.Dropdown(value=answered["label"]) if restore else gr.skip())
    clear = answered.get("label") and str(label or "") == answered["label"]
    return ui.marked(verdict, STALE_NOTE, True), (gr.Dropdown(value=None) if clear else gr.skip())


def verdict_freshness(state: dict[str, Any], verdict: Any, answered: Any) -> Any:
    """After a change of the label set (or of multi-label mode): Classify's answer is marked as given with an earlier
    label set; back to that label set (Undo), the mark goes."""
    if not isinstance(answered, dict) or not answered.get("label_set"):
        return gr.skip()
    return ui.marked(verdict, OLD_SET_VERDICT, ui.is_stale(answered, state))


MULTI_AUTO_INFO = ("answer 'unknown' when no label reaches its threshold (each label's threshold comes from your "
                   "examples, by cross-validation); untick to always name the most probable label, or set a "
                   "confidence threshold yourself")


def auto_info(state: dict[str, Any]) -> Any:
    """The *Unknown: automatic* box's explanation for the label set's mode (multi-label answers unknown differently)."""
    return gr.Checkbox(info=MULTI_AUTO_INFO if st.is_multi(state) else ui.AUTO_INFO)


def toggle_slider(auto_unknown: bool) -> Any:
    """The confidence slider is shown only when the automatic unknown is off."""
    return gr.Slider(visible=not auto_unknown)


def suggest_label(bars: Any, verdict: Any = "", matches: Any = None) -> Any:
    """Preselect the predicted label in Classify's 'add as example' picker (one click to confirm); nothing after
    an ``unknown`` answer, where the best guess is probably wrong. A multi-label answer of several labels
    preselects them all (``a; b``: the labels of its closest-example rows, in the answer's order)."""
    if str(verdict or "").startswith("### unknown"):
        return gr.Dropdown(value=None)
    if MULTI_ANSWER in str(verdict or ""):
        data = matches.get("data") if isinstance(matches, dict) else matches
        rows = data.values.tolist() if isinstance(data, pd.DataFrame) else (data or [])
        labels = list(dict.fromkeys(str(r[0]) for r in rows if isinstance(r, (list, tuple)) and r and r[0]))
        if labels:
            return gr.Dropdown(value=st.CELL_SEPARATOR.join(labels))
    if isinstance(bars, dict):  # gr.Label hands over {label: confidence}
        label = max(bars, key=lambda k: bars[k]) if bars else None
    else:
        label = bars
    return gr.Dropdown(value=str(label)) if label else gr.skip()


def same_text(a: Any, b: Any) -> bool:
    """Whether two texts are the same, spacing aside (as a label set compares examples: :func:`st.example_key`)."""
    return st.example_key(a) == st.example_key(b)


@ui.friendly
def add_classified(label: str, text: str, answered: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Classify's *Add as example*: :func:`labels_tab.add_one_example`, refused when the label is the one preselected
    for a text that has been edited since it was classified (the verdict, and so the label, was about another text)."""
    if str(text or "").strip() and not str(label or "").strip():
        raise FewShotError("choose the label this text belongs to (or press Classify: its answer is preselected)")
    if (isinstance(answered, dict) and answered.get("label") and str(label or "") == answered["label"]
            and not same_text(text, answered.get("text"))):
        raise FewShotError(f"the text changed since it was classified as {answered['label']!r}; classify it first, "
                           "or choose the label it belongs to")
    return labels_tab.add_one_example(label, text, state)
