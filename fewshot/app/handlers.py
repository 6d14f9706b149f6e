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

from ..encoders.encoder import over_length_note
from ..errors import FewShotError
from ..io.output import answer_counts, over_length_rows
from ..language import classifier_input_note
from ..text import same_name_as
from ..uncovered import MIN_GROUP_SIZE
from ..unknown import BATCH_MIN_TEXTS, reads_together
from . import browser, tiers, warmup
from . import evaluate as ev
from . import review as rv
from . import state as st

log = logging.getLogger("fewshot.app")
F = TypeVar("F", bound=Callable[..., Any])

PREVIEW_ROWS = 50
FEW_LABELS = 8  # more labels than this: the per-label counts collapse into a details block
FEW_WARNINGS = 3  # warnings shown at once; the others collapse (up to MAX_WARNINGS)
MAX_WARNINGS = 60


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


def pct(value: float | None, places: int = 0) -> str:
    """A share as a percentage with ``places`` decimals; ``n/a`` where there was nothing to count (None)."""
    return "n/a" if value is None else f"{value:.{places}%}"


def esc(text: Any) -> str:
    """User text made inert for Markdown/HTML display."""
    out = html.escape(str(text), quote=False)
    for ch in "\\`*_[]|#~":
        out = out.replace(ch, "\\" + ch)
    return " ".join(out.split())


def progress_fn(progress: gr.Progress | None, desc: str, unit: str = "texts"
                ) -> Callable[[int, int], None] | None:
    """Adapt ``gr.Progress`` to the library's ``progress(done, total)`` callback (``unit``: what it counts)."""
    if progress is None:
        return None

    def update(done: int, total: int) -> None:
        if total:
            progress((done, total), desc=desc, unit=unit)

    return update


def replaced(state: dict[str, Any]) -> str:
    """What an action that replaces the label set says about the examples it replaced ("" when there were none)."""
    n = len(st.complete_rows(st.state_rows(state)))
    return f"; replaced {n} example{'s' if n != 1 else ''} (Undo brings them back)" if n else ""


NO_CSV = "no file uploaded; choose a CSV file first"
NO_BATCH = "no file uploaded and no texts pasted; choose a CSV file, or paste texts, one per line"
NO_LABELLED = "no file uploaded; choose a CSV file with the true labels first"
NO_ZIP = "no file uploaded; choose a classifier zip (saved with Save classifier) first"
NO_EXAMPLES = "no file uploaded; choose a CSV file of examples (text,label) first"


def file_path(file: Any, missing: str = NO_CSV) -> str:
    """The path of an uploaded file (``gr.File`` gives a str; some clients send a dict); ``missing``: what to say
    when there is none, in the words of the tab that asked."""
    if isinstance(file, dict):
        file = file.get("path") or file.get("name")
    if not file:
        raise FewShotError(missing)
    return str(file)


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
        lines += ["| label | examples |", "|---|---|"] + [f"| {esc(lab)} | {n} |" for lab, n in counts.items()]
    else:  # a long list stays one click away instead of making the page thousands of pixels tall
        lines += [f"<details><summary>Examples per label ({len(counts)} labels)</summary>", "",
                  " · ".join(f"{esc(lab)} ({n})" for lab, n in counts.items()), "", "</details>"]
    incomplete = len(rows) - len(st.complete_rows(rows))
    notes = [f"⚠ {incomplete} row(s) have a label or a text missing and are ignored"] if incomplete else []
    ready = warmup.is_ready(False)  # the label set shows at once; the embedding check follows when it can
    notes += [f"⚠ {esc(f.message)}" for f in st.findings(rows, embeddings=ready, multi=multi)]
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


def fitted(state: dict[str, Any], cache: Any, progress: gr.Progress | None = None,
           int8: Any = None, encoder: Any = None) -> st.Fitted:
    """The session's classifier (refitted only when the label set or the encoder changed); ``encoder``: the
    encoder choice (:mod:`fewshot.app.tiers`), refused with a clear message when this server lacks it."""
    flag, tier = st.int8_flag(int8), tiers.check(encoder)
    if progress is not None and not warmup.is_ready(flag, tier):
        progress(None, desc=f"Preparing the {tier} encoder (first use)")
    fit = st.fitted_classifier(state, cache, progress_fn(progress, "Encoding examples"), int8=flag, tier=tier)
    if fit is not cache:  # said once, when the classifier is fitted
        if fit.note:
            gr.Warning(f"Encoded again with the {tier}{' int8' if flag else ''} encoder: {fit.note}", duration=10)
        if fit.left_out:
            gr.Info(st.left_out_note(fit.left_out), duration=8)
    return fit


OLD_LABEL_SET = "an earlier label set (it changed since)"


def marked(text: Any, note: str, on: bool) -> Any:
    """``text`` (a result's Markdown) with ``note`` put in front (``on``) or taken out; no change: ``gr.skip()``."""
    if not isinstance(text, str):
        return gr.skip()
    if on and note not in text:
        return note + text
    if not on and note in text:
        return text.replace(note, "", 1)
    return gr.skip()


def is_stale(result: Any, state: dict[str, Any]) -> bool:
    """Whether a result (Classify's answer, a batch, an evaluation) is about another label set than ``state``'s
    (:func:`st.label_set_id`: another example, label or mode); a result that records none is not judged."""
    about = result.get("label_set") if isinstance(result, dict) else None
    return bool(about) and about != st.label_set_id(state)


# ---- label-set actions -----------------------------------------------------------------------------
@friendly
def load_example(name: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a ready example set (undo brings the old one back)."""
    if name not in st.example_sets():
        name = next((k for k in st.example_sets() if k.lower() == str(name).lower()), name)
    rows = st.load_example_set(name)
    gr.Info(f"Loaded '{name}': {len(st.labels_of(rows))} labels, {len(rows)} examples" + replaced(state), duration=5)
    return label_view(st.with_rows(state, rows, {"multi_label": True} if st.is_multi(state) else {}))


MULTI_LABEL = "Multi-label: a text may carry several labels"
MULTI_INFO = ("write them as 'billing; bug', or repeat a text under each label; Classify then answers every label "
              "above its threshold")


def multi_box(state: dict[str, Any]) -> Any:
    """The multi-label switch as the label set says (after a refused switch)."""
    return gr.Checkbox(value=st.is_multi(state))


@friendly
def set_multi_label(multi: bool, state: dict[str, Any]) -> tuple[Any, ...]:
    """Switch multi-label mode (a text may carry several labels) on or off; the examples are kept."""
    return label_view(st.set_multi_label(state, multi))


@friendly
def add_examples(label: str, lines: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Add examples (one per line) to a label, new or existing."""
    new, skipped = st.add_examples(state, label, lines)
    if any(len(line.strip()) > st.MAX_INPUT_CHARS for line in str(lines or "").splitlines()):
        gr.Warning(f"examples are cut to {st.MAX_INPUT_CHARS:,} characters", duration=5)
    if skipped:
        gr.Info(st.skipped_note(st.check_cell(label, st.is_multi(state)), skipped), duration=5)
    return label_view(new)


@friendly
def set_table(table: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by the edited table (rows of label, text)."""
    new = st.with_rows(state, st.clean_rows(table))
    return new, summary_md(st.state_rows(new), st.is_multi(new))


def same_text(a: Any, b: Any) -> bool:
    """Whether two texts are the same, spacing aside (as a label set compares examples: :func:`st.example_key`)."""
    return st.example_key(a) == st.example_key(b)


@friendly
def add_classified(label: str, text: str, answered: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Classify's *Add as example*: :func:`add_one_example`, refused when the label is the one preselected for a text
    that has been edited since it was classified (the verdict, and so the label, was about another text)."""
    if str(text or "").strip() and not str(label or "").strip():
        raise FewShotError("choose the label this text belongs to (or press Classify: its answer is preselected)")
    if (isinstance(answered, dict) and answered.get("label") and str(label or "") == answered["label"]
            and not same_text(text, answered.get("text"))):
        raise FewShotError(f"the text changed since it was classified as {answered['label']!r}; classify it first, "
                           "or choose the label it belongs to")
    return add_one_example(label, text, state)


@friendly
def add_one_example(label: str, text: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Add one text (from Classify or Evaluate) as an example of ``label``."""
    if not str(text or "").strip():
        raise FewShotError("there is no text to add; classify a sentence or click a misclassified row first")
    new, skipped = st.add_examples(state, label, st.example_key(text))
    cell = st.check_cell(label, st.is_multi(state))
    gr.Info(st.skipped_note(cell, skipped) if skipped else f"Added as an example of '{cell}' (see the Labels tab)",
            duration=3)
    return label_view(new)


@friendly
def remove_label(label: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Remove a label and all its examples."""
    return label_view(st.remove_label(state, label))


@friendly
def rename_label(label: str, new_name: str, state: dict[str, Any]) -> tuple[Any, ...]:
    """Rename a label on all its examples; a name already in use merges the two labels."""
    new, merged = st.rename_label(state, label, new_name)
    name = st.check_label(new_name)
    gr.Info(f"Merged '{label}' into '{name}'" if merged else f"Renamed '{label}' to '{name}'", duration=3)
    return label_view(new)


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
    path = file_path(file, NO_EXAMPLES)
    rows, cut = st.read_examples(path)
    labels = st.labels_of(rows, st.is_multi(state))
    gr.Info(f"Imported {len(rows)} examples of {len(labels)} labels" + replaced(state), duration=5)
    if cut:
        gr.Warning(st.cut_note(cut), duration=8)
    return label_view(st.with_rows(state, rows))


@friendly
def export_csv(state: dict[str, Any]) -> str:
    """The label set as a ``text,label`` CSV download."""
    return str(st.export_csv(st.state_rows(state)))


@friendly
def save_classifier(int8: bool, encoder: str, state: dict[str, Any], cache: Any,
                    progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """The classifier as a zip of its portable folder (loadable with ``FewShotClassifier.load``)."""
    fit = fitted(state, cache, progress, int8, encoder)
    return str(st.save_zip(fit)), fit


@friendly
def load_classifier(file: Any, state: dict[str, Any]) -> tuple[Any, ...]:
    """Replace the label set by a saved classifier zip."""
    loaded, fit = st.load_zip(file_path(file, NO_ZIP))
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


# ---- classify --------------------------------------------------------------------------------------
BATCH_AWARE_LABEL = "Unknown: read the rows together"
BATCH_AWARE_INFO = ("also answer 'unknown' where a text and the rows most like it sit apart from your examples: a "
                    "topic no label covers, repeated in the file, is caught more often; each answer then depends "
                    "on the other rows")
TOO_FEW_TO_READ_TOGETHER = (f"Read together: the file has fewer than {BATCH_MIN_TEXTS} rows, too few for a topic to "
                            "repeat; each row was read on its own")
EVAL_TOGETHER_INFO = ("score the file's rows as Batch does with this option: to see, and choose on the curve below, "
                      "what it does to the unknown answers")
AUTO_LABEL = "Unknown: automatic (from your examples)"
AUTO_INFO = ("answer 'unknown' when a text scores below nearly all of your own examples (the threshold that "
             "costs about 2% of accuracy on them, by cross-validation); untick to set a confidence threshold yourself")
INT8_LABEL = "int8 encoder"
INT8_INFO = ("on 2 cores about twice the throughput of fp32 (CSVs), the same time for one sentence, 5-shot "
             "accuracy within 0.3 points; switching encodes your examples again")


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


def verdict_md(pred: Any, rule: st.Unknown, unknown_label: str) -> str:
    """The verdict in plain words first (the label or unknown, and why), the figures in a details block."""
    best, conf = esc(pred.top[0][0]), pred.top[0][1]
    if pred.label == unknown_label and pred.score == float("-inf"):
        return (f"### unknown\nThe text is closest to your \"none of these\" examples (label "
                f"**{esc(unknown_label)}**). Best guess: **{best}** ({conf:.0%}).")
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
        other = esc(alternatives[0][0] if isinstance(alternatives[0], (tuple, list)) else alternatives[0])
        out = (f"### {esc(pred.label)} or {other}?\nThe text fits both about equally well "
               f"({pred.confidence:.0%} for {esc(pred.label)}); an example that tells them apart helps.")
    else:
        out = f"### {esc(pred.label)}\n{pred.confidence:.0%} confident"
    if rule.mode == "auto":
        out += "\n\n" + TECH.format(f"confidence {pred.confidence:.0%} · in-scope score {pred.score:.2f} "
                                     f"(automatic unknown threshold {rule.threshold:.2f})")
    elif rule.mode == "point":
        out += "\n\n" + TECH.format(f"confidence {pred.confidence:.0%} · in-scope score {pred.score:.2f} "
                                     f"(unknown threshold {rule.threshold:.2f}, chosen on the Evaluate tab)")
    elif rule.note:
        out += f"  \n_Automatic unknown is off: {esc(rule.note)}._"
    return out


MULTI_ANSWER = "labels above their thresholds"  # how a multi-label answer of several labels reads


def multi_verdict_md(pred: Any, rule: st.Unknown, thresholds: dict[str, float], unknown_label: str) -> str:
    """A multi-label answer: every label above its threshold with its probability (or unknown, and why), the
    figures in a details block."""
    shown = ", ".join(f"{esc(lab)} {p:.0%} (threshold {thresholds.get(lab, float('nan')):.0%})"
                      for lab, p in pred.top[:5])
    tech = TECH.format(f"per-label probabilities (independent): {shown} · in-scope score {pred.score:.2f}")
    best, conf = esc(pred.top[0][0]), pred.top[0][1]
    if not pred.labels:
        if rule.mode == "labels":
            why = f"No label reaches its threshold ({st.thresholds_text(thresholds)})."
        elif rule.mode == "point":
            why = (f"The in-scope score {pred.score:.2f} is below the threshold {rule.threshold:.2f} chosen on the "
                   "Evaluate tab (or saved with the classifier).")
        else:
            shown, floor = distinct_percents(conf, rule.threshold)
            return (f"### unknown\nThe most probable label is below the threshold of {floor}. Best guess: **{best}** "
                    f"({shown}).\n\n{tech}")
        return f"### unknown\n{why} Best guess: **{best}** ({conf:.0%}).\n\n{tech}"
    probs = dict(pred.top)
    head = " · ".join(esc(lab) for lab in pred.labels)
    each = ", ".join(f"**{esc(lab)}** {probs.get(lab, pred.confidence):.0%}" for lab in pred.labels)
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


@friendly
def classify(text: str, auto_unknown: bool, threshold: float, int8: bool, encoder: str, state: dict[str, Any],
             cache: Any) -> tuple[Any, ...]:
    """Top labels with probabilities, a verdict (or unknown, with why), and the matched support examples."""
    if not str(text or "").strip():
        raise FewShotError("type a sentence to classify")
    fit = fitted(state, cache, None, int8, encoder)
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
    pred = st.predict_text(fit.clf, str(text), rule)
    bars = dict(pred.top)
    if st.is_multi_classifier(fit.clf):  # each answered label with its own closest examples
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
OLD_SET_VERDICT = f"_Answered with {OLD_LABEL_SET}: press **Classify** to answer with the current one._\n\n"


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
        return marked(verdict, STALE_NOTE, False), (gr.Dropdown(value=answered["label"]) if restore else gr.skip())
    clear = answered.get("label") and str(label or "") == answered["label"]
    return marked(verdict, STALE_NOTE, True), (gr.Dropdown(value=None) if clear else gr.skip())


def verdict_freshness(state: dict[str, Any], verdict: Any, answered: Any) -> Any:
    """After a change of the label set (or of multi-label mode): Classify's answer is marked as given with an earlier
    label set; back to that label set (Undo), the mark goes."""
    if not isinstance(answered, dict) or not answered.get("label_set"):
        return gr.skip()
    return marked(verdict, OLD_SET_VERDICT, is_stale(answered, state))


MULTI_AUTO_INFO = ("answer 'unknown' when no label reaches its threshold (each label's threshold comes from your "
                   "examples, by cross-validation); untick to always name the most probable label, or set a "
                   "confidence threshold yourself")


def auto_info(state: dict[str, Any]) -> Any:
    """The *Unknown: automatic* box's explanation for the label set's mode (multi-label answers unknown differently)."""
    return gr.Checkbox(info=MULTI_AUTO_INFO if st.is_multi(state) else AUTO_INFO)


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


# ---- batch -----------------------------------------------------------------------------------------
@friendly
def batch_columns(file: Any) -> Any:
    """The CSV's columns for the text-column dropdown (a likely text column preselected)."""
    if not file:
        return gr.Dropdown(choices=[], value=None)
    path = file_path(file)
    df = st.read_upload(path)
    text_column_warning(df, Path(path).name)
    if note := st.headerless_note(df, Path(path).name):
        gr.Warning(note, duration=10)
    return gr.Dropdown(choices=[str(c) for c in df.columns], value=st.text_column(df))


def text_column_warning(df: pd.DataFrame, name: str, exclude: str | None = None) -> None:
    """Warn when no column of the upload ``name`` looks like text, so that the person picks the text column rather
    than have numbers classified."""
    if note := st.text_column_note(df, name, exclude):
        gr.Warning(note, duration=10)


@friendly
def classify_csv(file: Any, column: str, auto_unknown: bool, threshold: float, int8: bool, encoder: str,
                 batch_aware: bool, pasted: str | None, state: dict[str, Any], cache: Any,
                 progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Label every row of a CSV, or of texts pasted one per line when no file is uploaded: preview,
    labelled-CSV download, a summary (unknowns counted), and the rows kept for review (:mod:`fewshot.app.review`);
    ``batch_aware``: the rows' in-scope scores read together (:func:`fewshot.unknown.batch_scores`)."""
    from_file = bool(file) or not str(pasted or "").strip()
    if from_file:
        path = file_path(file, NO_BATCH)
        df = st.read_upload(path)
        if not column:  # not chosen (an API call, or a click before the upload's columns were read)
            text_column_warning(df, Path(path).name)
        column, source = st.text_column(df, column), Path(path).name
        sep, about = st.upload_delimiter(path), source  # what the results are about: they stay when a later one fails
        if headerless := st.headerless_note(df, source):
            gr.Warning(headerless, duration=10)
    else:
        df, column, source, sep = st.pasted_rows(str(pasted)), st.PASTED_COLUMN, "pasted_texts", ","
        about, headerless = "Pasted texts", None
    fit = fitted(state, cache, progress, int8, encoder)
    rule = ev.unknown_rule(fit.clf, auto_unknown, threshold)  # a threshold chosen on Evaluate wins
    out, blank = st.classify_frame(fit.clf, df, column, rule, progress_fn(progress, "Classifying"),
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
    multi = st.is_multi_classifier(fit.clf)
    names = st.added_columns(df, multi)
    label_col, conf_col, _, score_col = names
    counts = answer_counts(out[label_col], multi)  # multi-label: a row counts for each of its labels
    done = len(out) - blank
    summary = (f"**{esc(about)}: {done} row{'s' if done != 1 else ''} labelled.** "
               + " · ".join(f"{esc(k)}: {v}" for k, v in counts.most_common()))
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
        gr.Warning(TOO_FEW_TO_READ_TOGETHER, duration=5)
    elif batch_aware and rule.mode in ("auto", "point"):
        together = ", read together with the rows most like them"
    if rule.mode == "auto" and not explained:
        summary += (f"  \n{unknown} row(s) answered *unknown*: unlike all of your examples (in-scope score{together}, "
                    f"column `{score_col}`, below the automatic threshold {rule.threshold:.2f})")
    elif rule.mode == "confidence" and not explained:
        summary += f"  \n{unknown} row(s) answered *unknown*: confidence below {rule.threshold:.0%}"
    elif rule.mode == "labels":
        summary += (f"  \n{unknown} row(s) answered *unknown*: no label reaches its threshold "
                    f"({st.thresholds_text(fit.clf.label_thresholds_)})")
    elif rule.mode == "point" and not explained:
        summary += (f"  \n{unknown} row(s) answered *unknown*: in-scope score{together} (column `{score_col}`) below "
                    f"{rule.threshold:.2f}, the threshold chosen on the Evaluate tab or saved with the classifier")
    elif rule.note:
        summary += f"  \nAutomatic unknown is off: {esc(rule.note)}"
    if blank:
        summary += f"  \n⚠ {blank} row{'s' if blank > 1 else ''} with an empty text kept unlabelled"
    if headerless:
        summary += f"  \n⚠ {esc(headerless)}"
    if fit.left_out:
        summary += f"  \nℹ {esc(st.left_out_note(fit.left_out))}"
    review = rv.from_batch(out, column, names, fit.clf.config.unknown_label, header=from_file, multi=multi)
    review["label_set"], review["tier"] = fit.label_set, fit.tier  # what the answers are about (marked when changed)
    if review["total"] > len(review["rows"]):
        summary += f"  \nThe {len(review['rows']):,} least confident rows are kept for review below."
    if unknown + nearest_none >= MIN_GROUP_SIZE:
        summary += ("  \nTopics your labels miss? *Find groups among the least confident rows* (below) shows the "
                    "texts they share")
        if not batch_aware and reads_together(done) and not st.is_multi_classifier(fit.clf):
            summary += f"; *{BATCH_AWARE_LABEL}* answers a recurring one unknown more often"
    first = [label_col, conf_col, column]  # the decisive columns first: they stay visible on a narrow screen
    preview = out[first + [c for c in out.columns if c not in first]].head(PREVIEW_ROWS)
    return preview, str(st.write_labelled(out, source, sep)), summary, fit, review


OLD_SET_BATCH = (f"_These answers come from {OLD_LABEL_SET}: press **Classify** to label the texts with the "
                 "current one._\n\n")


def batch_freshness(state: dict[str, Any], summary: Any, batch: Any, encoder: Any = None) -> Any:
    """After a change of the label set (or of multi-label mode) or of the encoder: the batch summary is marked as
    about an earlier label set, or as made with the other encoder (the preview, download and review below are its
    answers); back to that label set and encoder, the marks go."""
    if not isinstance(batch, dict) or not batch.get("label_set"):
        return gr.skip()
    stale = is_stale(batch, state)
    out = marked(summary, OLD_SET_BATCH, stale)
    made = other_tier(batch)
    if made:
        out = _remark(summary, out, other_tier_note(made, "batch"), not stale and made != current_tier(encoder, made))
    return out


def current_tier(encoder: Any, default: str) -> str:
    """The encoder choice of a request, ``default`` when it is not one (a freshness check never fails)."""
    try:
        return tiers.choice(encoder) if encoder is not None else default
    except FewShotError:
        return default


def other_tier(result: Any) -> str:
    """The encoder choice a result (a batch, an evaluation) was made with ("" when it records none)."""
    tier = result.get("tier") if isinstance(result, dict) else None
    return tier if tier in (tiers.FAST, tiers.ACCURATE) else ""


def other_tier_note(tier: str, kind: str) -> str:
    """The mark of a result made with the encoder ``tier`` while the other one is chosen (``kind``: "batch",
    "eval" or "point")."""
    again = {"batch": "press **Classify** to label the texts with the current one",
             "eval": "press **Evaluate** to measure the current one",
             "point": "press **Evaluate** again to choose a threshold for the current one"}[kind]
    what = {"batch": "These answers were", "eval": "These results were", "point": "This curve was"}[kind]
    return f"_{what} made with the {tier} encoder: {again}._\n\n"


# ---- evaluate --------------------------------------------------------------------------------------
@friendly
def eval_columns(file: Any) -> tuple[Any, Any]:
    """Text and label column dropdowns for an uploaded labelled CSV."""
    if not file:
        return gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None)
    path = file_path(file, NO_LABELLED)
    df = st.read_upload(path)
    cols = [str(c) for c in df.columns]
    label = st.label_column(cols)
    text_column_warning(df, Path(path).name, label)
    headerless = st.headerless_note(df, Path(path).name, evaluated=True)
    if headerless:
        gr.Warning(headerless, duration=10)
    if label is None:
        gr.Warning("no label column found (e.g. 'label'); choose the column that holds the true labels"
                   + ("" if headerless else st.header_hint(cols)))
    return gr.Dropdown(choices=cols, value=st.text_column(df, exclude=label)), gr.Dropdown(choices=cols, value=label)


def file_warnings(res: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """Evaluate's warnings about the file itself: labels the label set lacks, rows skipped (the first few named by
    their row as a spreadsheet shows the file, as the command line names them), a first row read as the header."""
    lines = []
    unseen = summary["unseen_labels"]
    if unseen:
        def named(lab: str) -> str:
            same = same_name_as(lab, res["classes"])
            return esc(lab) + (f" (did you mean {esc(same)}?)" if same else "")

        lines.append("⚠ labels in the file but not in your label set: " + ", ".join(map(named, unseen[:10]))
                     + (f" and {len(unseen) - 10} more" if len(unseen) > 10 else ""))
    if res["skipped"]:
        lines.append(f"⚠ {res['skipped']} row(s) without text or label were skipped"
                     + rows_named(res.get("skipped_rows") or [], res["skipped"]))
    if res.get("headerless"):
        lines.append(f"⚠ {esc(res['headerless'])}")
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
    return f" of **{esc(res['source'])}**" if res.get("source") else ""


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
                f"accuracy {pct(s['accuracy_rule'], 1)}")
        if s["n_oos"]:
            rule += (f" · in-scope accuracy {pct(s['in_scope_accuracy_rule'], 1)} · out-of-scope recall "
                     f"{pct(s['oos_recall'])} ({s['n_oos']} row(s) labelled `{esc(res['unknown_label'])}`)")
        lines.append(rule)
    if "oos_auroc" in s:
        lines.append(f"For any threshold: AUROC {s['oos_auroc']:.3f} (the chance that an in-scope row scores above a "
                     f"row labelled `{esc(res['unknown_label'])}`) · out-of-scope recall "
                     f"{s['oos_recall_at_cost']:.0%} at a cost of at most {100 * s['cost']:g} points of in-scope "
                     f"accuracy · FPR@95 {s['oos_fpr_at_95']:.2f}")
    if s["threshold"] is None and res.get("auto_note"):
        lines.append(f"_No unknown rule: {esc(res['auto_note'])}._")
    if res.get("batch_aware"):
        lines.append("In-scope scores read together with the rows most like them (as *Batch* reads a file with "
                     f"*{BATCH_AWARE_LABEL}*).")
    lines.append(f"{s['errors']} row(s) misclassified (with the unknown rule in use); the worst labels and the "
                 "most-confused pairs are below.")
    return "  \n".join(lines + file_warnings(res, s))


def multi_metrics_md(res: dict[str, Any]) -> str:
    """The multi-label headline: micro-F1, macro-F1, subset accuracy (exact set match), how the sets were answered."""
    s = ev.multi_summary(res)
    if res["rule"] == "labels":
        rule = (f"every label above its threshold ({st.thresholds_text(res['label_thresholds'])}), unknown when "
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


@friendly
def evaluate_csv(file: Any, text_col: str, label_col: str, int8: bool, encoder: str, batch_aware: bool,
                 state: dict[str, Any], cache: Any, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Accuracy (without and with the unknown rule), a confusion view of the labels with most errors and the
    misclassified rows on a labelled CSV; the scored rows stay in the session for the tables below.
    ``batch_aware``: the rows' in-scope scores read together, as Batch does with that option."""
    path = file_path(file, NO_LABELLED)
    df = st.read_upload(path)
    cols = [str(c) for c in df.columns]
    label_col = st.label_column(cols, label_col)
    if not text_col:
        text_column_warning(df, Path(path).name, label_col)
    text_col = st.text_column(df, text_col, exclude=label_col)
    if label_col is None:
        raise FewShotError(f"choose the label column (the true labels); the columns are {cols}{st.header_hint(cols)}")
    if text_col == label_col:
        raise FewShotError("the text column and the label column must differ")
    if note := st.foreign_labels_note(df, label_col, state, Path(path).name):  # said before the file is scored
        gr.Warning(note, duration=10)
    if headerless := st.headerless_note(df, Path(path).name, evaluated=True):
        gr.Warning(headerless, duration=10)
    fit = fitted(state, cache, progress, int8, encoder)
    res = ev.run(fit.clf, df, text_col, label_col, progress_fn(progress, "Classifying"),
                 batch_aware=bool(batch_aware))
    if batch_aware and not res.get("batch_aware"):
        gr.Warning(TOO_FEW_TO_READ_TOGETHER, duration=5)
    res["source"], res["headerless"] = Path(path).name, headerless or ""
    res["label_set"], res["tier"] = fit.label_set, fit.tier  # what it measured (a threshold is chosen for that)
    return eval_metrics_md(res), ev.confusion_figure(res), ev.errors(res), fit, res


OLD_SET_EVAL = f"_These results are about {OLD_LABEL_SET}: press **Evaluate** to measure the current one._\n\n"
OLD_SET_POINT = (f"_This curve is about {OLD_LABEL_SET}: press **Evaluate** again to choose a threshold for the "
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
    stale = is_stale(res, state)
    made = other_tier(res)
    now = current_tier(encoder, made or tiers.FAST)
    elsewhere = bool(made) and made != now and not stale
    if not stale and not res.get("multi") and made and "scores" in res:
        chosen = st.point_in_use(state, made)
        if chosen != res.get("chosen"):  # the point in use is not the one these results show: say the real one
            res = {**res, "chosen": chosen}
            value = ev.active_threshold(res)
            mark = other_tier_note(made, "eval") if elsewhere else ""
            line = ev.point_md(res, value) if value is not None and point else ""
            in_use = "" if elsewhere else point_in_use_md(chosen)
            return (mark + eval_metrics_md(res), ((other_tier_note(made, "point") if elsewhere else "") + line),
                    in_use, ev.curve_figure(res), res)
    metrics_out = marked(metrics, OLD_SET_EVAL, stale)
    point_out = marked(point, OLD_SET_POINT, stale) if point else gr.skip()
    if made:
        metrics_out = _remark(metrics, metrics_out, other_tier_note(made, "eval"), elsewhere)
        if point:
            point_out = _remark(point, point_out, other_tier_note(made, "point"), elsewhere)
    return metrics_out, point_out, "" if stale or elsewhere else gr.skip(), gr.skip(), gr.skip()


def _remark(text: Any, done: Any, note: str, on: bool) -> Any:
    """``marked`` once more, on ``done`` (a text already re-marked) or else ``text``."""
    base = done if isinstance(done, str) else text
    again = marked(base, note, on)
    return again if isinstance(again, str) else done


@friendly
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
    stale = state is not None and is_stale(res, state)
    point = ev.point_md(res, value) if value is not None else ""
    return ((OLD_SET_EVAL if stale else "") + eval_metrics_md(res), ev.confusion_figure(res), ev.errors(res),
            ev.per_label(res), ev.confused_pairs(res), ev.curve_figure(res),
            (OLD_SET_POINT if stale and point else "") + point)


@friendly
def preview_point(threshold: float, res: Any, state: Any = None) -> tuple[Any, str]:
    """What the slider's threshold would do on the evaluated rows: the curve with the point marked, one line (marked
    when the rows were scored with an earlier label set). Runs as the value is typed or moved by key or mouse; an
    emptied number box (None) changes nothing."""
    if threshold is None:
        return gr.skip(), gr.skip()
    res = _eval_result(res)
    value = ev.check_threshold(threshold)
    stale = state is not None and is_stale(res, state)
    return ev.curve_figure(res, value), (OLD_SET_POINT if stale else "") + ev.point_md(res, value)


def operating_point_md(fit: st.Fitted) -> str:
    """Which unknown rule Classify, Batch and *Save classifier* use in this session."""
    return point_in_use_md(fit.clf.config.score_threshold)


def point_in_use_md(chosen: float | None) -> str:
    """The in-use line for the operating point ``chosen`` (None: the automatic threshold)."""
    if chosen is None:
        return ("Unknown rule in use: **automatic** (from your examples). Classify and Batch apply it when "
                "*Unknown: automatic* is ticked.")
    return (f"Unknown rule in use: **threshold {chosen:.2f}** chosen here (in-scope score). Classify and Batch "
            "apply it when *Unknown: automatic* is ticked, and *Save classifier* saves it.")


@friendly
def set_operating_point(threshold: float, int8: bool, encoder: str, state: dict[str, Any], cache: Any,
                        res: Any = None) -> tuple[Any, ...]:
    """Use ``threshold`` (an in-scope score) as this session's unknown rule instead of the automatic one. Refused
    unless the evaluation it was chosen on measured the current label set (the same examples, labels and mode) with
    the current encoder model, and on a multi-label classifier (each label has its own threshold there)."""
    value = ev.check_threshold(threshold)
    check_operating_point(res, state, encoder)
    fit = fitted(state, cache, None, int8, encoder)  # single-label: check_operating_point refused multi-label mode
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
    if is_stale(res, state) or not res.get("label_set"):
        raise FewShotError("these evaluation results are about an earlier label set (it changed since): press "
                           "Evaluate again to choose a threshold for the current one")
    tier = tiers.check(encoder)
    if res.get("tier", tier) != tier:
        raise FewShotError(f"these evaluation results were measured with the {res['tier']} encoder: press Evaluate "
                           f"again to choose a threshold for the {tier} one")


@friendly
def automatic_point(int8: bool, encoder: str, state: dict[str, Any], cache: Any, res: Any = None) -> tuple[Any, ...]:
    """Back to the automatic unknown threshold (derived from the examples)."""
    state = st.with_point(state, None, tiers.check(encoder))
    fit = fitted(state, cache, None, int8, encoder)
    fit.clf.set_params(score_threshold=None)
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


# ---- session persistence ---------------------------------------------------------------------------
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


# ---- encoder status --------------------------------------------------------------------------------
def status_md(status: warmup.Status, accurate: warmup.Status | None = None) -> str:
    """The one-line encoder status under the title (the accurate tier's, once a visitor chose it)."""
    kind = "int8" if status.int8 else "fp32"
    if status.state == "ready":
        line = f"✓ Encoder ready ({kind}, prepared in {status.seconds:.0f} s)"
    elif status.state == "failed":
        line = f"✗ The encoder could not be prepared ({esc(status.error)}); the next request tries again"
    else:
        line = (f"Preparing the encoder ({kind}: loading the model"
                + (" and quantising it" if status.int8 else "")
                + ")… You can edit labels meanwhile; classifying waits until it is ready.")
    if accurate is not None and accurate.state == "preparing":
        line += " · Preparing the Accurate encoder (first use: about a minute)…"
    elif accurate is not None and accurate.state == "ready":
        line += f" · Accurate encoder ready (prepared in {accurate.seconds:.0f} s)"
    elif accurate is not None and accurate.state == "failed":
        line += f" · ✗ The Accurate encoder could not be prepared ({esc(accurate.error)})"
    return f"<small>{line}</small>"


def encoder_status() -> tuple[str, Any]:
    """The status line, and the timer that refreshes it while an encoder is being prepared.

    Also starts the preparation when nothing did (an app started by ``gradio app.py`` rather than
    :func:`fewshot.app.launch`), so the first visitor's page sets it going.
    """
    warmup.start()
    fast, accurate = warmup.status(), warmup.status(tiers.ACCURATE)
    busy = fast.state in ("idle", "preparing") or accurate.state == "preparing"
    return status_md(fast, accurate if accurate.state != "idle" else None), gr.Timer(active=busy)


def choose_encoder(encoder: str, int8: Any) -> tuple[Any, ...]:
    """The visitor chose an encoder: the accurate one starts being prepared in the background (first use); when
    this server lacks it, the choice goes back to Fast and the status line under it says why (this event is not
    queued, so a pop-up message would never be shown)."""
    tier = tiers.choice(encoder)
    why = tiers.problem(tier)
    if why:
        status, timer = encoder_status()
        return gr.Radio(value=tiers.FAST), f"⚠ {esc(why)}  \n{status}", timer
    if tier == tiers.ACCURATE:
        warmup.start(st.int8_flag(int8), tier=tiers.ACCURATE)
    return (gr.skip(), *encoder_status())


# ---- review (the last batch's rows, see fewshot.app.review) ----------------------------------------
@friendly
def review(unknown_only: bool, below: float, label: str, batch: Any) -> tuple[Any, ...]:
    """The last batch's rows that pass the filters, lowest confidence first (API ``/review``)."""
    batch, table = rv.filter_rows(batch, unknown_only, below, label)
    return table, batch


def no_match_note(unknown_only: Any, below: Any, label: Any) -> str:
    """What the review says when no row passes its filters (an empty table alone reads as a fault): which filters
    are on."""
    parts = [f"confidence below {float(below):g}"] if below is not None and float(below) < 1 else []
    parts += ["only 'unknown'"] if unknown_only else []
    parts += [f"predicted {esc(label)}"] if label not in (None, "", rv.ALL_LABELS) else []
    return f"_No rows match these filters ({', '.join(parts)}); loosen one to see rows._"


@friendly
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


@friendly
def review_add(index: float, label: str, state: dict[str, Any], batch: Any) -> tuple[Any, ...]:
    """Add the review row at ``index`` (its position in the review table) as an example of ``label``; an
    empty label: of its predicted label ("this is right"). Returns the label set (API ``/review_add``)."""
    new, batch, used = rv.add_row(state, batch, index, label)
    if st.state_rows(new) == st.state_rows(state):  # the text already was an example of that label
        gr.Info(st.skipped_note(used, [rv.picked(batch, index)["text"]]), duration=4)
    else:
        gr.Info(f"Added as an example of '{used}' (see the Labels tab)", duration=3)
    return (*label_view(new), batch)


def review_right(index: float, state: dict[str, Any], batch: Any) -> tuple[Any, ...]:
    """"This is right": the row becomes an example of its predicted label."""
    return review_add(index, "", state, batch)


@friendly
def review_groups(batch: Any, int8: Any, encoder: Any, state: dict[str, Any], cache: Any,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Group the batch's rows answered unknown, with the least in-scope others, that resemble each other
    (:mod:`fewshot.uncovered`): the groups table, the review with them, the group picker (API ``/review_groups``)."""
    from ..uncovered import MAX_GROUP_TEXTS, MIN_GROUP_SIZE, group_vectors

    rows, texts = rv.group_pool(batch)
    if len(rows) == MAX_GROUP_TEXTS:
        gr.Warning(f"only the {MAX_GROUP_TEXTS} least in-scope rows are grouped", duration=5)
    fit = fitted(state, cache, progress, int8, encoder)
    vectors = fit.clf.encoder.encode(texts, progress=progress_fn(progress, "Encoding the least confident rows"))
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


@friendly
def review_add_group(group: Any, label: str, state: dict[str, Any], batch: Any) -> tuple[Any, ...]:
    """Add a group's most typical texts, a label's worth, as examples of ``label`` (a new name, a label, or
    "none of these"). Returns the label set (API ``/review_add_group``)."""
    new, batch, used, added, already = rv.add_group_texts(state, batch, group, label)
    gr.Info(group_added_note(used, added, already, rv.texts_left(batch, group)), duration=5)
    return (*label_view(new), batch)


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
        fit = fitted(state, cache, None, int8, encoder)
        pred = fit.clf.predict_details([row["text"]], top=1, n_matches=5)[0]
        near = [[m.label, round(m.similarity, 2), m.text] for m in pred.matches]
    except FewShotError as exc:
        gr.Warning(str(exc), duration=5)
        return row["text"], position, suggestion, [], gr.skip()
    return row["text"], position, suggestion, near, fit
