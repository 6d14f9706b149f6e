"""The Labels tab's "Fine-tune for my labels" action: adapt the encoder's top layers to the session's examples
(:meth:`fewshot.FewShotClassifier.finetune`), with a progress bar, the cross-validated estimate before and
after, Cancel, Undo (back to instant) and the overlap hint ("these labels overlap: fine-tuning may help").

The fine-tuned classifier is the session's own (its ``gr.State`` cache, a private adapted copy of the encoder;
the shared encoders are never modified), so Classify, Batch, Evaluate and *Save classifier* use it until the
label set changes (then the instant classifier is fitted again). Cancel sets a ``threading.Event`` kept in a
per-session ``gr.State`` (:class:`CancelFlag`, copied fresh for every session), never shared.
"""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr

from ..errors import FewShotError
from . import tiers, warmup
from . import session_classifier as sc
from . import state as st
from . import ui

DEFAULT_BUDGET_S = 30
MAX_BUDGET_S = 300
HINT_MAX_EXAMPLES = 300  # the overlap hint runs by itself after a change of the label set up to this size


class CancelFlag:
    """A session's cancel switch for a running fine-tune. ``gr.State`` deep-copies its initial value for each
    session; the copy is a fresh flag, so no two sessions share an event."""

    def __init__(self) -> None:
        self.event = threading.Event()  # set: stop the run at its next step
        self.running = threading.Event()  # set while a run of this session is in flight

    def __deepcopy__(self, memo: dict[int, Any]) -> CancelFlag:
        return CancelFlag()


SINGLE_LABEL_ONLY = ("fine-tuning and the overlap hint work on single-label label sets; switch multi-label off "
                     "on the Labels tab to use them")


def _single_label(state: Any) -> None:
    """Fine-tuning and the overlap hint work on single-label label sets; say so in multi-label mode."""
    if st.is_multi(state):
        raise FewShotError(SINGLE_LABEL_ONLY)


def _budget(seconds: Any) -> float:
    try:
        value = float(seconds)
    except (TypeError, ValueError) as exc:
        raise FewShotError(f"the time budget must be a number of seconds, got {seconds!r:.40}") from exc
    if not 5 <= value <= MAX_BUDGET_S:
        raise FewShotError(f"the time budget must be between 5 and {MAX_BUDGET_S} seconds, got {value:g}")
    return value


def status_md(fit: Any) -> str:
    """Whether the session's classifier is instant or fine-tuned (and how well that went)."""
    report = getattr(getattr(fit, "clf", None), "finetuned_", None)
    if report is None:
        return "Classifier: **instant** (the encoder as shipped)."
    return (f"Classifier: **fine-tuned** for these labels ({report.steps} steps, {report.seconds:.0f} s; estimated "
            f"accuracy {ui.pct(report.estimate_before)} → {ui.pct(report.estimate_after)}). Classify, Batch, Evaluate "
            "and *Save classifier* use it until the label set changes.")


def report_md(report: Any, fit: Any) -> str:
    """What a fine-tune run did, in plain words, then the session's status."""
    if report.cancelled:
        head = "**Cancelled**: the classifier is unchanged."
    elif report.kept:
        head = (f"**Fine-tuned** in {report.seconds:.0f} s: estimated accuracy {ui.pct(report.estimate_before)} → "
                f"{ui.pct(report.estimate_after)} (cross-validated on your examples).")
    else:
        earlier = getattr(getattr(fit, "clf", None), "finetuned_", None) is not None
        kept = "earlier fine-tuning" if earlier else "instant classifier"
        head = f"**Kept the {kept}**: {ui.esc(_why_kept(report))}."
    return head + "  \n" + status_md(fit)


def _why_kept(report: Any) -> str:
    """Why a run returned no adapted weights (the report's reason), with the estimates unless the reason gives them
    already."""
    why = str(report.reason or "no gain expected").strip()
    if "estimated accuracy" not in why and report.estimate_before is not None:
        after = "" if report.estimate_after is None else f", {ui.pct(report.estimate_after)} after"
        why += f" (estimated accuracy {ui.pct(report.estimate_before)} before{after})"
    return why


@ui.friendly
def run_finetune(budget: float, int8: bool, encoder: str, state: dict[str, Any], cache: Any, flag: Any,
                 progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Fine-tune the session's classifier on its examples within ``budget`` seconds (Cancel stops it)."""
    from ..adapt import FinetuneConfig

    seconds = _budget(budget)
    _single_label(state)
    fit = ui.fitted(state, cache, progress, int8, encoder)
    flag = flag if isinstance(flag, CancelFlag) else CancelFlag()
    flag.event.clear()
    flag.running.set()
    try:
        progress(0, desc="Fine-tuning (training the encoder's top layers)")
        report = fit.clf.finetune(FinetuneConfig(time_budget=seconds),
                                  progress=ui.progress_fn(progress, "Fine-tuning", "steps"), cancel=flag.event)
    finally:
        flag.running.clear()
        flag.event.clear()
    return report_md(report, fit), fit  # a cancelled run is said once, in the panel


STARTING = ""  # while a run goes, its progress bar alone (the last run's words would show through it)


@ui.friendly
def starting(budget: Any, state: dict[str, Any]) -> str:
    """Before a run: the checks that need no encoder (the budget, the mode, two labels), refused as a message
    that leaves the panel as it was, and the status line cleared of the last run's words while this one runs."""
    _budget(budget)
    _single_label(state)
    sc.fit_rows(state)
    return STARTING


def cancel_finetune(flag: Any) -> Any:
    """Ask the running fine-tune of this session to stop at its next step (answers at once, outside the queue);
    with no run in flight the status line stays as it is (no "Cancelling…" left behind by a run that has ended)."""
    if not isinstance(flag, CancelFlag) or not flag.running.is_set():
        return gr.skip()
    flag.event.set()
    return "Cancelling… the classifier stays as it was."


@ui.friendly
def undo_finetune(int8: bool, encoder: str, state: dict[str, Any], cache: Any) -> tuple[Any, ...]:
    """Back to the instant classifier (the examples re-encoded by the shared encoder, from its cache)."""
    fit = ui.fitted(state, cache, None, int8, encoder)
    if fit.clf.finetuned_ is None:
        return "Nothing to undo: the classifier is already instant.  \n" + status_md(fit), fit
    fit.clf.undo_finetune()
    return "**Back to instant.**  \n" + status_md(fit), fit


def hint_md(hint: Any) -> str:
    """The overlap hint in plain words, the confused label pairs listed."""
    if not hint.confusable:
        return (f"No two labels stand out as overlapping (held-out examples classified right: {hint.estimate:.0%}); "
                "fine-tuning helps most where labels are close in meaning.")
    pairs = "; ".join(f"{ui.esc(a)} → {ui.esc(b)} ({s:.0%})" for a, b, s in hint.pairs[:5])
    return (f"ℹ **These labels overlap: fine-tuning may help** (estimated accuracy {hint.estimate:.0%}; "
            f"held-out examples went to another label: {pairs}).")


@ui.friendly
def overlap(int8: bool, encoder: str, state: dict[str, Any], cache: Any,
            progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
    """Whether the labels overlap on held-out examples (cross-validated on the examples' vectors)."""
    _single_label(state)
    fit = ui.fitted(state, cache, progress, int8, encoder)
    return hint_md(fit.clf.overlap_hint()), fit


MULTI_NOTE = f"ℹ {SINGLE_LABEL_ONLY[0].upper()}{SINGLE_LABEL_ONLY[1:]}."


def auto_hint(int8: bool, encoder: str, state: dict[str, Any], cache: Any) -> tuple[Any, ...]:
    """After a change of the label set: the overlap hint, when it is cheap (encoder ready, a small label set), else
    no hint (the button asks for it): a hint about an earlier label set never stays. In multi-label mode, a note that
    fine-tuning is for single-label label sets."""
    if st.is_multi(state):
        return MULTI_NOTE, gr.skip()
    try:
        rows = st.complete_rows(st.state_rows(state))
        if (len(st.labels_of(rows)) < 2 or len(rows) > HINT_MAX_EXAMPLES
                or not warmup.is_ready(sc.int8_flag(int8), tiers.check(encoder))):
            return "", gr.skip()
        fit = sc.fitted_classifier(state, cache, None, sc.int8_flag(int8), tiers.check(encoder))
        return hint_md(fit.clf.overlap_hint()), fit
    except FewShotError:
        return "", gr.skip()


def panel_mode(state: dict[str, Any]) -> tuple[Any, ...]:
    """The panel's buttons as the label set's mode allows (fine-tuning, its cancel, its undo, the overlap hint): off in
    multi-label mode (the hint says why), where *Cancel* loses its red too."""
    single = not st.is_multi(state)
    run, undo, hint = (gr.Button(interactive=single) for _ in range(3))
    return run, gr.Button(interactive=single, variant="stop" if single else "secondary"), undo, hint
