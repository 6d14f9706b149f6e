"""The session's classifier: fitted on its label set and reused until the label set or the encoder changes, and
how it answers a request (the visitor's unknown rule, one text, a table), with the label set's diagnostics.

Importing this module imports no torch: the classifier's modules load in the background
(:mod:`fewshot.app.warmup`) or at the first fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..diagnostics import Finding, diagnose, diagnose_multilabel
from ..errors import FewShotError
from ..io.output import label_frame, output_names
from ..language import english_encoder_name
from ..progress import ProgressFn
from . import state as st
from . import tiers
from .warmup import INT8_DEFAULT, shared_encoder

if TYPE_CHECKING:
    from ..classifier import FewShotClassifier, Prediction


def int8_flag(value: Any) -> bool:
    """The app's int8 switch from a request (a browser or API client may send anything)."""
    if value is None:
        return INT8_DEFAULT
    if not isinstance(value, (bool, int, float)):
        raise FewShotError(f"int8 must be true or false, got {value!r:.40}")
    return bool(value)


@dataclass
class Fitted:
    """A classifier fitted on one version of a label set (kept in the session's ``gr.State``)."""

    key: str
    clf: FewShotClassifier
    int8: bool = False
    note: str = ""  # what loading or refitting it dropped (an operating point that no longer applies, a fine-tuning)
    label_set: str = ""  # the label set it was fitted on (:func:`st.label_set_id`)
    tier: str = tiers.FAST  # the encoder choice it encodes with (int8 aside)
    left_out: int = 0  # examples of the label set the fit left out (multi-label mode: the "none of these" ones)


def fit_rows(state: Any) -> tuple[st.Rows, int]:
    """The rows the classifier is fitted on and how many examples are left out of the fit: in multi-label mode the
    "none of these" examples (label ``unknown``; a text no label reaches is answered unknown by itself), which stay
    in the label set. Refuses a label set with fewer than 2 labels to fit."""
    rows, multi = st.complete_rows(st.state_rows(state)), st.is_multi(state)
    left_out = 0
    if multi:
        left_out = st.counts_of(rows, True).get(st.NONE_LABEL, 0)
        rows = [[st.CELL_SEPARATOR.join(rest), text] for cell, text in rows
                if (rest := [lab for lab in st.cell_labels(cell, True) if lab != st.NONE_LABEL])]
    have = [lab for lab in st.labels_of(rows, multi) if not multi or lab != st.NONE_LABEL]
    if len(have) < 2:
        raise FewShotError("the classifier needs examples for at least 2 labels; "
                           + (f"you have only {have}" if have else "you have none yet")
                           + (f" (examples labelled {st.NONE_LABEL!r} are not used in multi-label mode)" if left_out
                              else "")
                           + ". Add labels on the Labels tab or load an example set")
    return rows, left_out


def left_out_note(n: int) -> str:
    """What the app says of the examples a multi-label fit leaves out (:func:`fit_rows`)."""
    return (f"{n} example(s) labelled {st.NONE_LABEL!r} (\"none of these\") are left out in multi-label mode, where a "
            "text no label reaches is answered unknown by itself; they are used again when multi-label is off")


def fitted_classifier(state: dict[str, Any], cache: Fitted | None, progress: ProgressFn | None = None,
                      int8: bool = False, tier: str = tiers.FAST) -> Fitted:
    """The session's classifier for ``state``: reused when the label set and encoder did not change, else refitted.

    ``int8``: the int8 encoder (see :mod:`fewshot.encoders.int8`); ``tier``: the encoder choice
    (:mod:`fewshot.app.tiers`); switching either refits, since the vectors differ. A refit of the same label set
    keeps the unknown threshold chosen for it (on Evaluate, or saved in a loaded zip) when only int8 changed (the
    same encoder model: the scores are on the same scale); what it cannot keep (a threshold chosen with the other
    encoder, a fine-tuning) is said in the new classifier's ``note``. Waits for the shared encoder when it is still
    being prepared (:mod:`fewshot.app.warmup`).
    """
    from ..classifier import FewShotClassifier

    label_set = st.label_set_id(state)
    key = fitted_key(label_set, int8, tier)
    point = st.point_in_use(state, tier, label_set)  # chosen on Evaluate, or saved in a loaded zip (multi-label too)
    if isinstance(cache, Fitted) and cache.key == key:
        if cache.clf.config.score_threshold != point:  # the point kept with the label set decides (Undo, reload)
            cache.clf.set_params(score_threshold=point)
        return cache
    rows, left_out = fit_rows(state)
    clf = FewShotClassifier(encoder=shared_encoder(int8, tier), int8=int8, **fit_options(state))
    clf.fit([r[1] for r in rows], [r[0] for r in rows], progress=progress)
    if point is not None:
        clf.set_params(score_threshold=point)
    note = _carried(cache, state, label_set, tier, int8)
    return Fitted(key, clf, int8, note=note, label_set=label_set, tier=tier, left_out=left_out)


def fitted_key(label_set: str, int8: bool, tier: str) -> str:
    """What a fitted classifier is reused for: its label set (:func:`st.label_set_id`) and encoder setting."""
    return label_set + ("/int8" if int8 else "") + ("" if tier == tiers.FAST else f"/{tier}")


SINGLE_LABEL_OPTIONS = ("rule", "adapt")
"""Options of a single-label classifier that multi-label mode does not take (a loaded zip may carry them): kept in
the state for when the switch goes off, left out of a multi-label fit."""


def fit_options(state: dict[str, Any]) -> dict[str, Any]:
    """The classifier options of ``state`` for a fit: in multi-label mode without :data:`SINGLE_LABEL_OPTIONS`."""
    options = dict(st.state_options(state))
    if options.get("multi_label"):
        for key in SINGLE_LABEL_OPTIONS:
            options.pop(key, None)
    return options


def _kind(tier: str, int8: bool) -> str:
    return f"{tier}{' int8' if int8 else ''}"


def _carried(cache: Any, state: Any, label_set: str, tier: str, int8: bool) -> str:
    """What a refit of the same label set with another encoder setting cannot keep ("" when nothing): an operating
    point chosen with the other encoder model (it applies again back on that one; int8 alone keeps it), a
    fine-tuning. The point itself lives in the state (:func:`st.state_point`) and is applied by
    :func:`fitted_classifier`."""
    if not isinstance(cache, Fitted) or cache.label_set != label_set:
        return ""
    lost = []
    point = st.state_point(state)
    if point and point["label_set"] == label_set and point["tier"] != tier and cache.tier != tier:
        lost.append(f"the unknown threshold {point['threshold']:.2f} was chosen with the {point['tier']} encoder, so "
                    f"with the {tier} one the automatic threshold applies (back on the {point['tier']} encoder, it "
                    "applies again)")
    if getattr(cache.clf, "finetuned_", None) is not None:
        lost.append(f"the fine-tuning was made with the {_kind(cache.tier, cache.int8)} encoder, so with the "
                    f"{_kind(tier, int8)} one the classifier is instant again (fine-tune again to adapt it)")
    return "; ".join(lost)


@dataclass(frozen=True)
class Unknown:
    """How the app answers 'unknown' for one request (see :func:`unknown_rule`); never stored in a classifier."""

    mode: str  # "auto": in-scope score below the automatic threshold; "labels": multi-label, no label reaches
    # its own threshold (the classifier's auto_unknown); "confidence"; "off"
    threshold: float | None = None  # "auto": score units (the head's top logit); "confidence": 0-1; "labels": None
    note: str = ""  # why "auto" was asked for but is not applied

    @property
    def options(self) -> dict[str, Any]:
        """The classifier's unknown options for this rule, passed per call (``predict_details(**options)``)."""
        return {"min_confidence": self.threshold if self.mode == "confidence" else None,
                "auto_unknown": self.mode in ("auto", "labels"), "score_threshold": None}


def is_multi_classifier(clf: Any) -> bool:
    """Whether ``clf`` is a multi-label classifier (``multi_label=True``)."""
    return bool(getattr(getattr(clf, "config", None), "multi_label", False))


def thresholds_text(thresholds: dict[str, float]) -> str:
    """Per-label thresholds in a few words: ``40%`` when they are all one value, else their range."""
    values = sorted(set(round(v, 4) for v in thresholds.values()))
    if not values:
        return "none"
    return f"{values[0]:.0%}" if len(values) == 1 else f"{values[0]:.0%} to {values[-1]:.0%} by label"


def auto_threshold(clf: FewShotClassifier) -> tuple[float | None, str]:
    """The classifier's automatic threshold (cached per label set), or None and the reason it has none."""
    try:
        return float(clf.auto_threshold_), ""
    except FewShotError as exc:
        return None, str(exc).replace("the automatic unknown threshold (auto_unknown=True)", "the automatic unknown")


def unknown_rule(clf: FewShotClassifier, auto: Any, threshold: Any) -> Unknown:
    """The user's unknown rule for one request: automatic (from the examples), a confidence floor, or none.

    ``auto`` true: the automatic in-scope-score threshold, the slider is ignored; when the label set is too
    small for the cross-validated threshold (no label with 2 examples) nothing is answered unknown and the
    note says why. ``auto`` false: ``threshold`` is a confidence in [0, 1]; 0 or None: never unknown.
    """
    if auto is not None and not isinstance(auto, (bool, int, float)):
        raise FewShotError(f"auto_unknown must be true or false, got {auto!r:.40}")
    if auto and is_multi_classifier(clf):
        # multi-label: every label has its own threshold (clf.label_thresholds_); the classifier's automatic
        # unknown answers no label when none reaches its own, as a saved classifier with auto_unknown does
        return Unknown("labels")
    if auto:
        value, note = auto_threshold(clf)
        return Unknown("auto", value) if value is not None else Unknown("off", None, note)
    try:
        value = float(threshold or 0.0)
    except (TypeError, ValueError) as exc:
        raise FewShotError(f"the threshold must be a number between 0 and 1, got {threshold!r:.40}") from exc
    if not 0.0 <= value <= 1.0:
        raise FewShotError(f"the threshold must be between 0 and 1, got {value}")
    return Unknown("confidence", value) if value > 0 else Unknown("off")


def predict_text(clf: FewShotClassifier, text: str, rule: Unknown) -> Prediction:
    """One text's answer under ``rule``: the label (or unknown), the top 5 labels and the 5 closest examples."""
    return clf.predict_details([text[:st.MAX_INPUT_CHARS]], top=5, n_matches=5, **rule.options)[0]


def findings(rows: st.Rows, *, embeddings: bool = True, multi: bool = False) -> list[Finding]:
    """Diagnostics of the complete rows; ``embeddings``: also the checks that need the shared fp32 encoder
    (examples closer to another label, from its cached vectors; the language), which wait for that encoder.
    ``multi`` (multi-label mode): the merged examples, by :func:`fewshot.diagnostics.diagnose_multilabel`."""
    english = english_encoder_name(shared_encoder()) if embeddings else None
    if multi:  # the "none of these" examples are left out of a multi-label fit, so out of its checks too
        sets = {t: kept for t, labs in st.example_sets_of(rows).items()
                if (kept := [lab for lab in labs if lab != st.NONE_LABEL])}
        texts = list(sets)
        vectors = shared_encoder().encode(texts) if texts and embeddings else None
        return diagnose_multilabel(texts, list(sets.values()), vectors, english_encoder=english)
    rows = st.complete_rows(rows)
    texts, labels = [r[1] for r in rows], [r[0] for r in rows]
    vectors = shared_encoder().encode(texts) if texts and embeddings else None
    return diagnose(texts, labels, vectors, english_encoder=english)


def classify_frame(clf: FewShotClassifier, df: pd.DataFrame, column: str, rule: Unknown,
                   progress: ProgressFn | None = None, *, batch_aware: bool = False) -> tuple[pd.DataFrame, int]:
    """``df`` in the one labelled-output format (:func:`fewshot.io.output.label_frame`: label, confidence,
    top-3, in-scope score; blank texts kept unlabelled), each text cut to :data:`st.MAX_INPUT_CHARS` and
    ``unknown`` answered by ``rule`` (``batch_aware``: the rows' scores read together). Returns the labelled
    frame and the number of blank rows.
    """
    out = label_frame(clf, df, column, progress=progress, max_chars=st.MAX_INPUT_CHARS, batch_aware=batch_aware,
                      **rule.options)
    blank = df[column].astype(str).str.slice(0, st.MAX_INPUT_CHARS).str.strip() == ""
    return out, int(blank.sum())


def added_columns(df: pd.DataFrame, multi: bool = False) -> tuple[str, ...]:
    """Names of the columns :func:`classify_frame` adds to ``df`` (``predicted_`` prefixed on a clash; ``multi``:
    a multi-label classifier's, whose first is ``labels``)."""
    return output_names([str(c) for c in df.columns], multi)
