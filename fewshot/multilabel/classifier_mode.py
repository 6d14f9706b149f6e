"""Multi-label mode of :class:`fewshot.FewShotClassifier` (``multi_label=True``): the classifier delegates here.

The examples stay in the classifier's support set (texts, vectors, FAISS index: explanations and matches
work as in single-label mode); a multi-label example's label is stored as its labels joined with ``;``
(:func:`fewshot.multilabel.table.join_labels`), which is also how ``examples.csv`` saves it. The decisions
come from a :class:`~fewshot.multilabel.MultiLabelCore` fitted on the whole-text vectors plus the word-window
views (:mod:`fewshot.multilabel.views`) of each example.

Answers: a list of labels per text, most probable first; ``[]`` is unknown. Unknown in multi-label mode:

- ``min_confidence``: a text whose most probable label's probability is below it gets ``[]``;
- ``score_threshold``: the in-scope score is the most probable label's decision value (its logit, best over
  the text's views); a text scoring below the threshold gets ``[]``. The score is a monotone function of the
  top probability (``score = log(p / (1 - p))``), so the two options are one rule on two scales;
- ``auto_unknown``: a text for which no label reaches its own threshold (cross-validated on the examples, or
  set by ``label_thresholds``) gets ``[]``; without it the most probable label is named even then (the core's
  ``at_least_one``). As in single-label mode, ``score_threshold`` replaces the automatic rule when both are set;
- "none of these" examples (labelled ``unknown_label``) are not accepted.

Per-label thresholds are cross-validated on the examples (see :mod:`fewshot.multilabel.core`);
``label_thresholds`` (a dict label -> probability) overrides some of them.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FewShotError
from ..progress import ProgressFn
from ..text import clean_texts, label_name, non_string_hint
from .core import STATE_ARRAYS, STATE_JSON, MultiLabelConfig, MultiLabelCore, matched_examples, sigmoid
from .metrics import multilabel_scores
from .options import check_config
from .table import join_labels, split_label_cell
from .views import build_views, windows_of

if TYPE_CHECKING:
    from ..classifier import FewShotClassifier, Match, Prediction

__all__ = ["MultiLabelMode", "cell_labels", "check_config", "evaluate", "label_sets_of"]

UNKNOWN_KEYS = ("min_confidence", "auto_unknown", "score_threshold")


def cell_labels(cell: Any, where: str = "a label") -> list[str]:
    """One text's labels, given as a list of labels or a ``;``-separated string (:func:`split_label_cell`);
    anything else (a number, a blank cell read as NaN) is refused, naming ``where``, as single-label fit does."""
    items = list(cell) if isinstance(cell, (list, tuple, set, frozenset)) else [cell]
    for x in items:
        if not isinstance(x, str):
            raise FewShotError(f"{where} must be a string or a list of strings, got {type(x).__name__} {x!r}"
                               f"{non_string_hint(x)}")
    if isinstance(cell, str):
        return split_label_cell(cell)
    return list(dict.fromkeys(label_name(x) for x in items if x.strip()))


def label_sets_of(texts: Sequence[Any], labels: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    """One example per distinct text with the union of its labels: each label given as a list of labels or a
    ``;``-separated string (:func:`split_label_cell`); repeated texts (after stripping) are merged."""
    if isinstance(labels, str) or len(texts) != len(labels):
        n = "a string" if isinstance(labels, str) else len(labels)
        raise FewShotError(f"texts and labels must have the same length, got {len(texts)} and {n}")
    merged: dict[str, dict[str, None]] = {}
    for i, (text, cell) in enumerate(zip(clean_texts(texts, "texts"), labels)):
        merged.setdefault(text.strip(), {}).update(dict.fromkeys(cell_labels(cell, f"labels[{i}]")))
    out_texts, out_sets = list(merged), [list(v) for v in merged.values()]
    for t, s in zip(out_texts, out_sets):
        if not s:
            raise FewShotError(f"example {t[:60]!r} has no label")
    return out_texts, out_sets


class MultiLabelMode:
    """The multi-label state of one classifier: the fitted core, and the examples' window vectors (cached by
    text, so adding examples encodes only the new ones)."""

    def __init__(self) -> None:
        self.core: MultiLabelCore | None = None
        self.cv_thresholds: np.ndarray | None = None  # the core's thresholds before label_thresholds overrides
        self.fitted_for: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self.windows: dict[str, np.ndarray] = {}

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, clf: FewShotClassifier, texts: Sequence[str], labels: Sequence[Any],
            progress: ProgressFn | None = None) -> None:
        """``clf.fit`` in multi-label mode: replace the examples (labels: lists or ``;`` strings)."""
        from ..support import SupportSet

        texts, sets = label_sets_of(texts, labels)
        self._check_sets(clf, sets)
        clf._warn_about_examples(texts, [lab for labs in sets for lab in labs])
        joined = [join_labels(s) for s in sets]
        clf.support = SupportSet(clf.encoder.dim)
        clf._add(texts, joined, clf.encoder.encode(texts, progress=progress))

    def add_examples(self, clf: FewShotClassifier, label: Any, texts: Sequence[str]) -> None:
        """``clf.add_examples``: ``label`` a label, a list of labels or a ``;`` string."""
        texts = clean_texts(texts, "texts")
        if not texts:
            raise FewShotError(f"no texts given for label {label!r}")
        _, sets = label_sets_of(texts[:1], [label])
        self._check_sets(clf, sets, at_least=1)
        clf._add(texts, [join_labels(sets[0])] * len(texts), clf.encoder.encode(texts))

    def counts(self, clf: FewShotClassifier) -> dict[str, int]:
        """``clf.counts``: examples per label, an example counting for each of its labels."""
        out: dict[str, int] = {}
        for cell in clf.support.labels:
            for lab in split_label_cell(cell):
                out[lab] = out.get(lab, 0) + 1
        return dict(sorted(out.items()))

    def remove_label(self, clf: FewShotClassifier, label: str) -> None:
        """``clf.remove_label``: take ``label`` off every example; examples left without a label are dropped, and
        so is the label's own threshold (``label_thresholds``)."""
        s = clf.support
        sets = [split_label_cell(lab) for lab in s.labels]
        if not any(label in labs for labs in sets):
            raise FewShotError(f"unknown label {label!r}; known labels: {list(clf.classes_)}")
        keep = [i for i, labs in enumerate(sets) if [x for x in labs if x != label]]
        s.labels = [join_labels([x for x in labs if x != label]) for labs in sets]
        s.keep(keep)
        thresholds = dict(clf.config.label_thresholds or {})
        if thresholds.pop(label, None) is not None:
            clf.config = replace(clf.config, label_thresholds=thresholds or None)
        clf._refit()

    def rename_label(self, clf: FewShotClassifier, label: str, new_label: str) -> None:
        """``clf.rename_label``: ``label`` renamed inside every example's labels (merged where the example already
        has ``new_label``); a per-label threshold follows it unless ``new_label`` has one."""
        s = clf.support
        sets = [split_label_cell(lab) for lab in s.labels]
        if not any(label in labs for labs in sets):
            raise FewShotError(f"unknown label {label!r}; known labels: {list(clf.classes_)}")
        self._check_sets(clf, [[new_label]], at_least=1)
        s.labels = [join_labels(dict.fromkeys(new_label if x == label else x for x in labs)) for labs in sets]
        thresholds = dict(clf.config.label_thresholds or {})
        if label in thresholds:
            thresholds.setdefault(new_label, thresholds.pop(label))
            clf.config = replace(clf.config, label_thresholds=thresholds)
        clf._refit()

    @staticmethod
    def _check_sets(clf: FewShotClassifier, sets: list[list[str]], at_least: int = 2) -> None:
        bad = clf.config.unknown_label
        if any(bad in s for s in sets):
            raise FewShotError(f"examples labelled {bad!r} ('none of these') are not accepted with multi_label=True; "
                               "for unknown answers (no label) use auto_unknown, min_confidence or score_threshold")
        distinct = {lab for s in sets for lab in s}
        if len(distinct) < at_least:
            raise FewShotError(f"need at least 2 labels to choose between, got only {sorted(distinct)!r}")

    def refit(self, clf: FewShotClassifier) -> None:
        """``clf._refit`` in multi-label mode: refit the core when the examples changed, apply the overrides."""
        s = clf.support
        key = (tuple(s.texts), tuple(s.labels))
        sets = [split_label_cell(lab) for lab in s.labels]
        clf._fitted_head = None
        clf._auto_threshold = None
        clf._has_none = False
        if len({lab for labs in sets for lab in labs}) < 2:
            self.core, self.fitted_for = None, None
            clf.classes_ = np.array(sorted({lab for labs in sets for lab in labs}), dtype=object)
            return
        if self.core is None or self.fitted_for != key:
            from ..rules import one_torch_thread

            views = self.views(clf, list(s.texts), np.asarray(s.vectors))
            cfg = MultiLabelConfig() if self.core is None else replace(self.core.config_)
            with one_torch_thread():
                self.core = MultiLabelCore(cfg).fit(np.asarray(s.vectors), sets, views)
            self.cv_thresholds = self.core.thresholds_.copy()
            self.fitted_for = key
        self.apply_thresholds(clf)
        clf.classes_ = self.core.classes_.copy()

    def apply_thresholds(self, clf: FewShotClassifier) -> None:
        """The cross-validated thresholds with the config's ``label_thresholds`` overrides on top."""
        if self.core is None or self.cv_thresholds is None:
            return
        self.core.thresholds_ = self.cv_thresholds.copy()
        overrides = clf.config.label_thresholds or {}
        missing = sorted(set(overrides) - {str(c) for c in self.core.classes_})
        if missing:
            raise FewShotError(f"label_thresholds names unknown label(s) {missing}; labels: {list(self.core.classes_)}")
        if overrides:
            self.core.set_thresholds(overrides)

    def views(self, clf: FewShotClassifier, texts: list[str], vectors: np.ndarray,
              progress: ProgressFn | None = None, cache: bool = True) -> list[np.ndarray]:
        """Each text's views (its vector, then its word windows' vectors); window vectors of examples are
        cached by text (``cache``)."""
        todo = [t for t in dict.fromkeys(texts) if not cache or t not in self.windows]
        found: dict[str, np.ndarray] = {}
        if todo:
            windows, counts = windows_of(todo)
            enc = (clf.encoder.encode(windows, progress=progress) if windows
                   else np.zeros((0, vectors.shape[1]), dtype=np.float32))
            offsets = np.r_[0, np.cumsum(counts)]
            found = {t: enc[offsets[i]:offsets[i + 1]] for i, t in enumerate(todo)}
            if cache:
                self.windows.update(found)
        table = self.windows if cache else found
        whole = np.asarray(vectors)
        per = [table[t] for t in texts]
        return build_views(whole, np.concatenate(per) if per else whole[:0], [len(p) for p in per])

    def thresholds(self, clf: FewShotClassifier) -> dict[str, float]:
        """``clf.label_thresholds_``: each label's decision threshold in use (cross-validated, overrides applied)."""
        return self._ready(clf).thresholds()

    # ---- predicting ------------------------------------------------------------------------------
    def _ready(self, clf: FewShotClassifier) -> MultiLabelCore:
        if self.core is None:
            raise FewShotError(f"the classifier needs examples for at least 2 labels, has {list(clf.classes_)}; "
                               "call fit() or add_examples() first")
        return self.core

    def logits(self, clf: FewShotClassifier, texts: Sequence[str], progress: ProgressFn | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, per-label logits)`` of new texts (whole text and its windows)."""
        core = self._ready(clf)
        texts = clean_texts(texts, "texts")
        if not texts:
            return np.zeros((0, clf.encoder.dim), dtype=np.float32), np.zeros((0, len(core.classes_)))
        vectors = clf.encoder.encode(texts, progress=progress)
        views = self.views(clf, texts, vectors, cache=False)
        return vectors, core.decision_function(vectors, views)

    def predict_with_scores(self, clf: FewShotClassifier, texts: Sequence[str], progress: ProgressFn | None = None,
                            **overrides: Any) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
        """``(label lists, per-label probabilities, in-scope scores)``."""
        _, z = self.logits(clf, texts, progress)
        probs = sigmoid(z)
        scores = z.max(1) if len(z) else np.empty(0)
        return self.labels_from_proba(clf, probs, scores, **overrides), probs, scores

    def labels_from_proba(self, clf: FewShotClassifier, probs: np.ndarray, scores: np.ndarray | None = None,
                          **overrides: Any) -> list[list[str]]:
        """Label lists for rows of ``predict_proba`` output, with the unknown options (and per-call overrides)."""
        core = self._ready(clf)
        bad = sorted(set(overrides) - set(UNKNOWN_KEYS))
        if bad:
            raise FewShotError(f"multi-label answers take min_confidence or score_threshold overrides, got {bad}")
        config = replace(clf.config, **overrides) if overrides else clf.config
        if overrides:
            config.validate()
        probs = np.asarray(probs, dtype=np.float64)
        automatic = config.auto_unknown and config.score_threshold is None  # no label passes: unknown
        on = core.indicator(probs, at_least_one=core.config_.at_least_one and not automatic)
        top = probs.max(1) if len(probs) else np.empty(0)
        reject = np.zeros(len(probs), dtype=bool)
        if config.min_confidence is not None:
            reject |= top < config.min_confidence
        if config.score_threshold is not None:
            if scores is None:
                scores = _logit(top)
            reject |= np.asarray(scores) < config.score_threshold
        on[reject] = False  # rejected rows: unknown, no label
        return core.label_lists(probs, on)

    def predict_details(self, clf: FewShotClassifier, texts: Sequence[str], top: int = 3, n_matches: int = 3,
                        progress: ProgressFn | None = None, *, types: tuple[type[Prediction], type[Match]],
                        **overrides: Any) -> list[Prediction]:
        """Per text a Prediction: ``labels`` (the list; ``label`` the ``;``-joined cell or ``unknown_label``),
        the top probability, the ``top`` labels, and per predicted label its most similar examples
        (``label_matches``); ``matches`` are the nearest examples overall. ``types``: the classifier's
        ``(Prediction, Match)`` classes (passed in: this module does not import the classifier)."""
        Prediction, Match = types  # noqa: N806

        overrides.pop("ambiguity_margin", None)  # no "A or B?" question in multi-label mode: both can be answered
        vectors, z = self.logits(clf, texts, progress)
        if not len(z):
            return []
        probs = sigmoid(z)
        scores = z.max(1)
        answers = self.labels_from_proba(clf, probs, scores, **overrides)
        s = clf.support
        sets = [split_label_cell(lab) for lab in s.labels]
        per_label = matched_examples(vectors, answers, s.vectors, sets, k=n_matches)
        sims, rows = s.nearest(vectors, n_matches)
        classes = self._ready(clf).classes_
        out = []
        for i, labels in enumerate(answers):
            order = np.argsort(-probs[i], kind="stable")[:top]
            nearest = [Match(s.texts[r], s.labels[r], float(sim)) for sim, r in zip(sims[i], rows[i]) if r >= 0]
            pred = Prediction(join_labels(labels) if labels else clf.config.unknown_label, float(probs[i].max()),
                              [(str(classes[j]), float(probs[i, j])) for j in order], nearest[:n_matches],
                              float(scores[i]), labels=list(labels),
                              label_matches={lab: [Match(s.texts[r], s.labels[r], sim) for r, sim in hits]
                                             for lab, hits in per_label[i].items()})
            out.append(pred)
        return out

    # ---- persistence -----------------------------------------------------------------------------
    def saved_files(self) -> dict[str, bytes]:
        """``multilabel.npz`` and ``multilabel.json`` (thresholds before the config's overrides, which the
        saved config re-applies on load)."""
        if self.core is None:
            return {}
        arrays, meta = self.core.state()
        arrays = dict(arrays) | {"thresholds": self.cv_thresholds}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return {STATE_ARRAYS: buf.getvalue(),
                STATE_JSON: json.dumps(meta, indent=1, sort_keys=True).encode("utf-8")}

    def restore(self, clf: FewShotClassifier, folder: Any) -> None:
        """Use the core saved in ``folder`` (a :class:`fewshot.persist.SavedFolder`) for its examples, so loading
        refits nothing; a folder without one (or a damaged one) is refitted from its examples instead."""
        directory = folder.directory
        if not (directory / STATE_JSON).is_file():
            return
        core = MultiLabelCore.load(directory)
        if core.weights_.shape[1] != clf.encoder.dim:
            return
        self.core = core
        self.cv_thresholds = core.thresholds_.copy()
        self.fitted_for = (tuple(folder.texts), tuple(folder.labels))


def evaluate(clf: FewShotClassifier, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Multi-label scores of ``clf`` on texts with true label sets (``[]`` = expected unknown):
    :func:`fewshot.multilabel.multilabel_scores` plus the predictions and timing."""
    import time

    started = time.perf_counter()
    predicted = clf.predict(list(texts))
    seconds = time.perf_counter() - started
    result = multilabel_scores(label_sets, predicted, labels=[str(c) for c in clf.classes_])
    result["predict_seconds"] = seconds
    result["n_labels"] = len(clf.classes_)
    result["predictions"] = predicted
    return result


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, 1.0)
    with np.errstate(divide="ignore"):
        return np.where(p < 1.0, np.log(p) - np.log1p(-np.minimum(p, 1 - 1e-16)), math.inf)
