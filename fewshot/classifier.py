"""FewShotClassifier: a scikit-learn shaped few-shot text classifier (examples in, labels out, no training run).

The estimator only orchestrates: the examples live in :mod:`fewshot.support`, the rules in
:mod:`fewshot.rules`, the out-of-scope logic in :mod:`fewshot.unknown`, the folder format in
:mod:`fewshot.persist`, the settings in :mod:`fewshot.config`.
"""

from __future__ import annotations

import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence, Sized
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import batch_reading, persist, unknown
from .config import ClassifierConfig, migrate_options, option_names, unknown_options
from .diagnostics import joined_labels, same_name_labels
from .encoders.encoder import Encoder
from .errors import FewShotError, FewShotWarning, user_stacklevel
from .language import english_encoder_name, not_english_note
from .rules import attention_probs, fit_rule_head, one_torch_thread
from .support import SupportIndex, SupportSet
from .progress import Progress, takes_progress_bar
from .text import clean_labels, clean_texts, label_name, label_text

if TYPE_CHECKING:
    from .adapt import FinetuneConfig, FinetuneReport, OverlapHint

__all__ = ["FewShotClassifier", "Match", "Prediction"]

ENCODER_OPTIONS = ("model", "batch_size", "int8", "extra_layers", "adapt", "multi_label")
"""Options that decide the encoder or the vectors: set_params changes them only before the classifier has examples."""
UNKNOWN_OPTIONS = ("min_confidence", "auto_unknown", "score_threshold")
"""Options that change only which answers are unknown: set_params applies them without refitting."""
AUTO_OPTIONS = ("auto_max_drop", "auto_quantile")
"""Options of the automatic threshold: set_params recomputes it (on next use) without refitting the rule."""
ANSWER_OPTIONS = ("ambiguity_margin",)
"""Options that change only how an answer is flagged (ambiguous): set_params applies them without refitting."""


@dataclass
class Match:
    """A support example near a query."""

    text: str
    label: str
    similarity: float


@dataclass
class Prediction:
    """One query's answer: the label (or the unknown label), its probability, the runners-up, the evidence."""

    label: str
    confidence: float
    top: list[tuple[str, float]]
    matches: list[Match] = field(default_factory=list)
    score: float = 0.0  # in-scope score: higher = closer to the examples (see FewShotClassifier.in_scope_score)
    ambiguous: bool = False  # "A or B?": the top two probabilities differ by less than ambiguity_margin
    alternatives: list[str] = field(default_factory=list)  # the top two labels when ambiguous, else []
    labels: list[str] = field(default_factory=list)  # multi_label: every predicted label, most probable first
    # ([]: unknown)
    label_matches: dict[str, list[Match]] = field(default_factory=dict)  # multi_label: per predicted label, its
    # nearest examples


_MAKING_ENCODERS = threading.Lock()
"""Held while a classifier makes its encoder on first use, so that two threads asking at once make one."""


class FewShotClassifier:
    """Classify texts from a few examples per label (a scikit-learn classifier: ``clone``, ``cross_val_score`` and
    ``GridSearchCV`` work on it, through the protocol below rather than scikit-learn's base classes, so that using
    the classifier never imports scikit-learn, whose import sets process environment variables).

    >>> clf = FewShotClassifier().fit(["where is my refund", "card stolen"], ["refund", "lost_card"])
    >>> clf.predict(["I lost my card"])  # doctest: +SKIP
    array(['lost_card'], dtype=object)

    ``rule``: ``"head"`` (default), ``"matching"`` or ``"prototype"`` (see :mod:`fewshot.rules`).
    Unknown answers (see :mod:`fewshot.unknown`): ``min_confidence`` (a probability: below it the answer
    is ``unknown_label``); ``auto_unknown=True``: below a threshold on the in-scope score derived from the
    examples alone (5-fold cross-validation, see ``auto_threshold_``), the one expected to cost
    ``auto_max_drop`` (2 %) of in-scope accuracy, or with ``auto_quantile`` set, that quantile of the
    held-out examples' scores; ``score_threshold``: an explicit in-scope-score threshold instead.
    With ``multi_label=True``, ``auto_unknown=True`` answers ``[]`` when no label reaches its own threshold
    (``label_thresholds_``; see :mod:`fewshot.multilabel.classifier_mode`).
    ``set_params`` changes options after construction (no re-encoding).
    ``adapt``: ``"none"`` (default) or ``"maml"`` / ``"fomaml"`` / ``"reptile"``: fit the head with the
    meta-learned inner loop stored in the model folder (see :mod:`fewshot.meta`).

    Examples labelled ``unknown_label`` are "none of these" examples: they are no class (``classes_``
    and ``predict_proba`` leave them out), but a text whose nearest rule output is theirs is answered
    ``unknown_label`` whatever the threshold, and its in-scope score is ``-inf``.
    """

    def __init__(self, model: str | None = None, *, encoder: Encoder | None = None, **options: Any) -> None:
        self.config = ClassifierConfig.from_options({"model": model, **options})  # checked, not loaded
        self._given_encoder = encoder  # a parameter as given (get_params), so that scikit-learn's clone shares it
        self._build()

    def _build(self) -> None:
        """An empty state for ``self.config``; the encoder, which loads its model, is made on first use
        (:attr:`encoder`), so that making, cloning or ``set_params`` of an unfitted classifier loads nothing."""
        self._encoder: Encoder | None = self._given_encoder
        self._support: SupportSet | None = None
        self._fitted_head: Any = None
        self._meta_model: Any = None
        self._finetune: Any = None  # fewshot.finetuned.Finetuned once fine-tuned (the instant encoder is kept in it)
        self._auto_threshold: float | None = None
        self._none_groups = 0  # classes the rule fits for the "none of these" examples (fewshot.unknown.none_groups)
        self._none_memo: tuple[np.ndarray, np.ndarray] | None = None  # (their vectors, their groups): see
        # _none_group_ids
        self.classes_: np.ndarray = np.array([], dtype=object)
        self._multilabel: Any = None  # fewshot.multilabel.classifier_mode.MultiLabelMode with multi_label=True
        if self.config.multi_label:
            from .multilabel.classifier_mode import MultiLabelMode

            self._multilabel = MultiLabelMode()

    @property
    def encoder(self) -> Encoder:
        """The encoder that turns texts into vectors (the one given, or made from the options on first use; by one
        thread when several ask at once)."""
        if self._encoder is None:
            with _MAKING_ENCODERS:
                if self._encoder is None:
                    layers = self.config.extra_layers
                    if layers == "auto" and self.config.adapt != "none":
                        layers = []  # a meta-learned inner loop works on the sentence embedding it was trained on
                    self._encoder = Encoder(self.config.model, batch_size=self.config.batch_size,
                                            int8=self.config.int8, extra_layers=layers)
        return self._encoder

    @encoder.setter
    def encoder(self, encoder: Encoder) -> None:
        self._encoder = encoder

    @property
    def support(self) -> SupportSet:
        """The examples, their labels and vectors (empty until ``fit`` or ``add_examples``)."""
        if self._support is None:
            self._support = SupportSet(self.encoder.dim)
        return self._support

    @support.setter
    def support(self, support: SupportSet) -> None:
        self._support = support

    def _has_examples(self) -> bool:
        """Whether any example was added (without making the encoder)."""
        return self._support is not None and bool(self._support.texts)

    _estimator_type = "classifier"  # scikit-learn before 1.6 reads this; later versions __sklearn_tags__

    def __sklearn_is_fitted__(self) -> bool:
        """What scikit-learn's ``check_is_fitted`` asks: whether the classifier has examples (``classes_`` exists
        from the start, empty, so the attribute alone would not tell)."""
        return self._has_examples()

    # ---- options ---------------------------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (1.6+): a classifier of lists of strings, multi-label with ``multi_label``."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_label=self.config.multi_label),
                    input_tags=InputTags(one_d_array=True, two_d_array=False, string=True))

    def __repr__(self) -> str:
        """``FewShotClassifier(...)`` with the options that differ from the defaults."""
        defaults = asdict(ClassifierConfig())
        changed = {k: v for k, v in asdict(self.config).items() if v != defaults.get(k)}
        if self._given_encoder is not None:
            changed["encoder"] = self._given_encoder
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The options as given (scikit-learn convention: ``clone`` makes an unfitted copy from them), by their
        current names, and ``encoder`` when one was passed in."""
        return {f.name: getattr(self.config, f.name) for f in fields(self.config)} | {"encoder": self._given_encoder}

    def set_params(self, **options: Any) -> FewShotClassifier:
        """Change options after construction, e.g. ``clf.set_params(auto_unknown=True)``; returns self.

        Unknown options (``min_confidence``, ``auto_unknown``, ``score_threshold``) apply at once; rule
        options refit the rule from the stored vectors (no re-encoding). Options that decide the encoder or the
        vectors (``model``, ``int8``, ``extra_layers``, ``batch_size``, ``adapt``, ``multi_label``) may change
        until the classifier has examples (so ``GridSearchCV`` can search them); after that, make a new classifier.
        Old names (``unknown_threshold``) are mapped with a ``FutureWarning``.
        """
        options = migrate_options(options)
        if "encoder" in options and options.pop("encoder") is not self._given_encoder:
            raise FewShotError("encoder is fixed when the classifier is made (it decides the vectors); make a new "
                               "FewShotClassifier(encoder=...) instead")
        bad = sorted(set(options) - option_names())
        if bad:
            raise FewShotError(f"unknown option(s) {bad}; expected some of {sorted(option_names() - {'model'})}")
        fixed = sorted(k for k in options if k in ENCODER_OPTIONS and options[k] != getattr(self.config, k))
        if fixed and (self._has_examples() or self._given_encoder is not None):
            why = "the classifier has examples" if self._has_examples() else "an encoder was given"
            raise FewShotError(f"{fixed[0]} is fixed once {why} (it decides the vectors); "
                               f"make a new FewShotClassifier({fixed[0]}=...) instead")
        new = replace(self.config, **options)
        new.validate()
        if fixed:  # no examples yet: a new encoder for the new options, made on first use as after __init__
            self.config = new
            self._build()
            return self
        changed = {k for k in options if getattr(self.config, k) != getattr(new, k)}
        self.config = new
        if changed - set(UNKNOWN_OPTIONS) - set(AUTO_OPTIONS) - set(ANSWER_OPTIONS):
            self._refit()  # the rule or the label set's reading changed
        elif changed & set(AUTO_OPTIONS):
            self._auto_threshold = None
        return self

    # ---- defining labels -------------------------------------------------------------------------
    @takes_progress_bar("encoding examples")
    def fit(self, texts: Sequence[str], labels: Sequence[str], *, progress: Progress = None
            ) -> FewShotClassifier:
        """Replace all examples with ``texts`` labelled ``labels``; returns self.

        With ``multi_label=True`` each label may be a list of labels or a ``;``-separated string, and a text
        given several times carries all its labels (see :mod:`fewshot.multilabel.classifier_mode`).
        """
        if self._multilabel is not None:
            self._multilabel.fit(self, texts, labels, progress)
            return self
        texts = clean_texts(texts, "texts")
        labels = clean_labels(labels)
        if len(texts) != len(labels):
            raise FewShotError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
        if not texts:
            raise FewShotError("no examples given: pass at least one example for each of 2 labels")
        distinct = sorted(set(labels) - {self.config.unknown_label})
        if len(distinct) < 2:
            extra = (f" (examples labelled {self.config.unknown_label!r} are 'none of these' examples, not a label)"
                     if self.config.unknown_label in labels else "")
            raise FewShotError(f"need at least 2 labels to choose between, got only {distinct!r}{extra}")
        if self.config.adapt != "none":
            self._load_meta_model()  # a missing or mismatched model folder fails before any text is encoded
        self._warn_about_examples(texts, labels)
        self.support = SupportSet(self.encoder.dim)
        self._add(texts, labels, self.encoder.encode(texts, progress=progress))
        return self

    def _warn_about_examples(self, texts: list[str], labels: list[str]) -> None:
        """A :class:`FewShotWarning` for each of what ``fit`` should not pass silently: examples that do not look
        English for an encoder that reads English only (:mod:`fewshot.language`), label names written two ways
        (:func:`fewshot.diagnostics.same_name_labels`), names joined like a multi-label cell (``joined_labels``)."""
        encoder = english_encoder_name(self.encoder)
        notes = [not_english_note(texts, encoder) if encoder else None]
        distinct = sorted(set(labels))
        notes += [f.message for f in joined_labels(distinct) + same_name_labels(distinct)]
        for note in filter(None, notes):
            warnings.warn(note, FewShotWarning, stacklevel=user_stacklevel())

    def add_examples(self, label: str, texts: Sequence[str]) -> FewShotClassifier:
        """Add examples to a label (new or existing; with ``multi_label``: a list of labels or a ``;`` string
        too); returns self."""
        if self._multilabel is not None:
            self._multilabel.add_examples(self, label, texts)
            return self
        (label,) = clean_labels([label], "label")
        texts = clean_texts(texts, "texts")
        if not texts:
            raise FewShotError(f"no texts given for label {label!r}")
        if self.config.adapt != "none":
            self._load_meta_model()  # a missing or mismatched model folder fails before anything is added
        self._add(texts, [label] * len(texts), self.encoder.encode(texts))
        return self

    def remove_label(self, label: str) -> FewShotClassifier:
        """Forget a label and all its examples (with ``multi_label``: the label is taken off every example, and
        examples left without a label are forgotten); returns self."""
        if self._multilabel is not None:
            self._multilabel.remove_label(self, label)
            return self
        if label not in self.support.labels:
            raise FewShotError(f"unknown label {label!r}; known labels: {list(self.classes_)}")
        self.support.keep([i for i, lab in enumerate(self.support.labels) if lab != label])
        self._refit()
        return self

    def rename_label(self, label: str, new_label: str) -> FewShotClassifier:
        """Give ``label`` a new name on all its examples; a name already in use merges the two labels (an example
        both had is kept once). Nothing is encoded again; returns self."""
        if not isinstance(new_label, str) or not new_label.strip():
            raise FewShotError(f"the new label name must be a non-empty string, got {new_label!r:.40}")
        new_label = label_name(new_label)
        if new_label == label:
            raise FewShotError(f"the label is already called {label!r}")
        if self._multilabel is not None:
            self._multilabel.rename_label(self, label, new_label)
            return self
        s = self.support
        if label not in s.labels:
            raise FewShotError(f"unknown label {label!r}; known labels: {list(self.classes_)}")
        moved = [lab == label for lab in s.labels]
        have = {t for t, lab in zip(s.texts, s.labels) if lab == new_label}  # the merged label's own texts
        keep = [i for i, (t, m) in enumerate(zip(s.texts, moved)) if not (m and t in have)]
        s.labels = [new_label if m else lab for lab, m in zip(s.labels, moved)]
        s.keep(keep)
        self._refit()
        return self

    def remove_example(self, text: str, label: str | None = None) -> FewShotClassifier:
        """Forget one example text (of ``label`` if given); returns self."""
        s = self.support
        drop = [i for i, (t, lab) in enumerate(zip(s.texts, s.labels))
                if t == text and (label is None or lab == label)]
        if not drop:
            raise FewShotError(f"no example {text!r}" + (f" under label {label!r}" if label else ""))
        s.keep([i for i in range(len(s.texts)) if i not in set(drop)])
        self._refit()
        return self

    @property
    def examples(self) -> pd.DataFrame:
        """The support examples as a ``text,label`` DataFrame."""
        return self.support.frame()

    @property
    def index(self) -> SupportIndex:
        """The FAISS index over the examples' vectors."""
        return self.support.index

    def counts(self) -> dict[str, int]:
        """Examples per label (with ``multi_label``: an example counts for each of its labels)."""
        if self._multilabel is not None:
            return self._multilabel.counts(self)
        return {str(k): int(v) for k, v in
                pd.Series(self.support.labels, dtype=object).value_counts().sort_index().items()}

    def _add(self, texts: list[str], labels: list[str], vectors: np.ndarray) -> None:
        self.support.add(texts, labels, vectors)
        self._refit()

    def _refit(self) -> None:
        """Recompute classes and the fitted rule from the current examples (fast: no encoding)."""
        if self._multilabel is not None:
            self._multilabel.refit(self)  # encodes new examples' word windows
            return
        unknown_label = self.config.unknown_label
        labels = self.support.labels
        self.classes_ = np.array(sorted(set(labels) - {unknown_label}), dtype=object)
        self._class_index = {c: i for i, c in enumerate(self.classes_)}
        self._class_index[unknown_label] = len(self.classes_)  # "none of these" examples: one extra rule class
        self._has_none = unknown_label in labels
        self._label_idx = np.array([self._class_index[lab] for lab in labels], dtype=np.int64)
        self._none_groups = unknown.none_group_count(self._label_idx, len(self.classes_))  # fixed per label set
        self._none_memo = None
        self._fitted_head = None
        self._auto_threshold = None
        self._name_vectors = np.empty((0, self.encoder.dim), dtype=np.float32)
        if len(self.classes_) < 2 or self.config.rule == "matching":
            return
        if self.config.label_names:
            self._name_vectors = self.encoder.encode([label_text(c) for c in self.classes_])
        self._fitted_head = self._fit_head(self.support.vectors, self._label_idx)

    def _fit_head(self, x: np.ndarray, y: np.ndarray, names: np.ndarray | None = None) -> Any:
        """Fit the configured rule's head on examples ``x`` with label indices ``y`` (plus label names: their
        vectors ``names``, default the encoder's), on one torch thread (see :func:`fewshot.rules.one_torch_thread`)."""
        with one_torch_thread():
            if self.config.label_names:
                names = self._name_vectors if names is None else names
                x, y = np.vstack([x, names]), np.concatenate([y, np.arange(len(self.classes_))])
            n_classes = len(self.classes_) + self._has_none
            if self.config.adapt != "none":
                from .meta.adapted import fit_adapted_head  # meta-training code: loaded only for adapt

                return fit_adapted_head(x, y, n_classes, self._load_meta_model())
            n_real = len(self.classes_)  # "none of these" as label-sized groups, read back as one class
            none = y == n_real
            ids = self._none_group_ids(x[none])
            y = y.copy()
            y[none] = n_real + ids
            groups = int(ids.max()) + 1 if len(ids) else 0
            head = fit_rule_head(x, y, n_real + groups, self.config)
            return unknown.FoldedNoneHead(head, n_real) if groups > 1 else head

    def _none_group_ids(self, vectors: np.ndarray) -> np.ndarray:
        """:func:`fewshot.unknown.none_groups` of these "none of these" vectors, computed once per distinct set:
        every fold of the automatic threshold trains on all of them (they are never held out), so k-means runs
        once per label set instead of once per fold."""
        memo = self._none_memo
        if memo is None or not np.array_equal(memo[0], vectors):
            memo = self._none_memo = (vectors, unknown.none_groups(vectors, self._none_groups))
        return memo[1]

    def _load_meta_model(self) -> Any:
        """The meta-learned inner loop of the model folder (``adapt`` != "none"), loaded once."""
        if self._meta_model is None:
            folder = self.encoder.spec.trained_dir
            if folder is None:
                raise FewShotError(f"adapt={self.config.adapt!r} needs a model folder trained with "
                                   f"`fewshot train --method {self.config.adapt}`; model {self.encoder.name!r} "
                                   "is not one. Pass model=FOLDER or adapt='none'")
            from .meta.adapted import MetaModel

            meta = MetaModel.load(folder)
            if meta.config.method != self.config.adapt:
                raise FewShotError(f"adapt={self.config.adapt!r} but {folder} was meta-trained with "
                                   f"{meta.config.method!r}; pass adapt={meta.config.method!r}")
            self._meta_model = meta
        return self._meta_model

    # ---- predicting ------------------------------------------------------------------------------
    def _check_ready(self) -> None:
        if len(self.classes_) < 2:
            raise FewShotError(f"the classifier needs examples for at least 2 labels, has {list(self.classes_)}; "
                               "call fit() or add_examples() first")

    def _proba_and_neighbours(self, vectors: np.ndarray, k: int
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(probs over classes_, similarities, neighbour rows, "none of these" wins)`` for encoded texts."""
        self._check_ready()
        sims, rows = self.support.nearest(vectors, k)
        n_rule = len(self.classes_) + self._has_none
        if self.config.rule == "matching":
            probs, _ = attention_probs(sims, self._neighbour_labels(rows), n_rule, self.config.matching_temperature)
        else:
            probs = self._fitted_head.predict_proba(vectors)  # set by _refit whenever there are >= 2 labels
        if not self._has_none:
            return probs, sims, rows, np.zeros(len(probs), dtype=bool)
        real, none_wins = unknown.split_none(probs, len(self.classes_))
        return real, sims, rows, none_wins

    def _neighbour_labels(self, rows: np.ndarray) -> np.ndarray:
        """Label index of each neighbour row (``len(classes_)``: "none of these"; -1: no neighbour)."""
        return np.where(rows >= 0, self._label_idx[np.maximum(rows, 0)], -1)

    def _scores(self, vectors: np.ndarray, sims: np.ndarray, rows: np.ndarray, none_wins: np.ndarray) -> np.ndarray:
        """In-scope scores (see :mod:`fewshot.unknown`); ``-inf`` where the "none of these" examples win."""
        if self._fitted_head is None:
            scores = unknown.matching_scores(sims, self._neighbour_labels(rows), len(self.classes_))
        else:
            scores = unknown.head_scores(self._fitted_head, vectors, len(self.classes_))
        return np.where(none_wins, -np.inf, scores)

    @property
    def auto_threshold_(self) -> float:
        """The in-scope score below which ``auto_unknown=True`` answers unknown (computed once per label set).

        Each label's examples are split into 5 folds; the rule is refitted without each fold and scores
        and classifies the held-out examples, as it will texts it has not seen. The threshold rejects
        ``auto_max_drop`` of the held-out examples from among those classified right (the in-scope accuracy
        it is expected to cost; :func:`fewshot.unknown.threshold_for_drop`), or, with ``auto_quantile`` set,
        is that quantile of all their scores (the earlier rule; it costs more accuracy the more examples are right).
        """
        self._check_ready()
        if self._multilabel is not None:
            raise FewShotError("auto_threshold_ is not available with multi_label=True (no automatic in-scope "
                               "threshold: auto_unknown uses the per-label thresholds, label_thresholds_)")
        if self._auto_threshold is None:
            scores, right = self._cross_validated_scores()
            self._auto_threshold = unknown.auto_threshold(scores, right, self.config)
        return self._auto_threshold

    def _cross_validated_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """In-scope scores of held-out examples, and whether the rule fitted without them classifies them right."""
        if self._finetune is not None:  # the adapted encoder saw every example: use the fine-tuning folds' encoders
            from .finetuned import fold_cross_validated_scores

            found = fold_cross_validated_scores(self)
            if found is not None:
                return found
        fit = None if self.config.rule == "matching" else self._fit_head
        return unknown.cross_validated_scores(self.support.vectors, self._label_idx, len(self.classes_), fit)

    @property
    def score_threshold_(self) -> float | None:
        """The in-scope-score threshold in use: ``score_threshold``, else the automatic one with
        ``auto_unknown``, else None."""
        if self.config.score_threshold is not None:
            return float(self.config.score_threshold)
        if self._multilabel is not None:  # its automatic unknown reads the per-label thresholds (label_thresholds_)
            return None
        return self.auto_threshold_ if self.config.auto_unknown else None

    @property
    def label_thresholds_(self) -> dict[str, float]:
        """Multi-label only: each label's decision threshold in use, ``{label: probability}`` (cross-validated on
        the examples, with ``label_thresholds`` overrides); a text gets every label whose probability reaches its
        threshold, and with ``auto_unknown`` no label at all when none does."""
        if self._multilabel is None:
            raise FewShotError("label_thresholds_ is only for multi_label=True classifiers; a single-label "
                               "classifier has one answer per text (see min_confidence, score_threshold_)")
        return self._multilabel.thresholds(self)

    def in_scope_score(self, texts: Sequence[str]) -> np.ndarray:
        """In-scope score per text (higher: closer to the examples); compare with ``auto_threshold_``."""
        if self._multilabel is not None:
            return self._multilabel.predict_with_scores(self, texts)[2]
        texts = clean_texts(texts, "texts")
        self._check_ready()
        if not texts:
            return np.empty(0)
        vectors = self.encoder.encode(texts)
        _, sims, rows, none_wins = self._proba_and_neighbours(vectors, self.config.k)
        return self._scores(vectors, sims, rows, none_wins)

    @takes_progress_bar("classifying")
    def predict_with_scores(self, texts: Sequence[str], *, progress: Progress = None,
                            batch_aware: bool = False, **unknown_overrides: Any
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(labels, probabilities, in-scope scores)`` in one pass (what batch jobs need); keyword overrides
        of the unknown options as in :meth:`labels_from_proba`. With ``multi_label``: labels is a list of
        label lists.

        ``batch_aware``: read the texts' in-scope scores together (:func:`fewshot.batch_reading.batch_scores`), so
        that an unknown intent repeated in the batch is answered unknown more often; each answer then depends
        on the other texts. Not available with ``multi_label``."""
        if self._multilabel is not None:
            if batch_aware:
                raise FewShotError("batch_aware is not available with multi_label=True (its unknown answers come "
                                   "from per-label thresholds, not an in-scope score)")
            return self._multilabel.predict_with_scores(self, texts, progress, **unknown_overrides)
        texts = clean_texts(texts, "texts")
        self._check_ready()
        if not texts:
            return np.array([], dtype=object), np.empty((0, len(self.classes_))), np.empty(0)
        vectors = self.encoder.encode(texts, progress=progress)
        probs, sims, rows, none_wins = self._proba_and_neighbours(vectors, self.config.k)
        scores = self._scores(vectors, sims, rows, none_wins)
        if batch_aware:
            scores = batch_reading.batch_scores(scores, vectors, np.where(rows[:, 0] >= 0, sims[:, 0], -1.0),
                                                examples=self.support.vectors[self._label_idx < len(self.classes_)],
                                                near=batch_reading.similarity_floor(self.encoder))
        return self.labels_from_proba(probs, scores, **unknown_overrides), probs, scores

    @takes_progress_bar("classifying")
    def predict_proba(self, texts: Sequence[str], *, progress: Progress = None) -> np.ndarray:
        """Probabilities (n, n_classes); columns follow ``classes_`` (with ``multi_label``: independent per-label
        probabilities; rows need not sum to 1)."""
        if self._multilabel is not None:
            return self._multilabel.predict_with_scores(self, texts, progress)[1]
        texts = clean_texts(texts, "texts")
        self._check_ready()
        if not texts:
            return np.empty((0, len(self.classes_)))
        return self._proba_and_neighbours(self.encoder.encode(texts, progress=progress), self.config.k)[0]

    @takes_progress_bar("classifying")
    def predict(self, texts: Sequence[str], *, progress: Progress = None, batch_aware: bool = False,
                **unknown_overrides: Any) -> np.ndarray | list[list[str]]:
        """The most likely label per text (``unknown_label`` where the unknown options reject it; keyword
        overrides of those options as in :meth:`labels_from_proba`; ``batch_aware`` as in
        :meth:`predict_with_scores`). A ``multi_label`` classifier always returns a list of label lists, most
        probable first, ``[]`` where the unknown options reject the text."""
        return self.predict_with_scores(texts, progress=progress, batch_aware=batch_aware, **unknown_overrides)[0]

    def score(self, texts: Sequence[str], labels: Sequence[str] | Sequence[Sequence[str]]) -> float:
        """Mean accuracy of :meth:`predict` on ``texts`` against ``labels`` (scikit-learn's ``score``, so that
        ``cross_val_score`` and ``GridSearchCV`` work as with any classifier). The unknown options apply: a gold
        ``unknown_label`` is right only when answered unknown. With ``multi_label`` a text is right when its
        predicted label set equals its gold set (subset accuracy; labels as lists or ``;``-separated strings,
        ``unknown`` or empty for none). The in-scope score per text is :meth:`in_scope_score`."""
        texts = clean_texts(texts, "texts")
        if isinstance(labels, str) or not isinstance(labels, Sized):
            raise FewShotError(f"labels must be a list with one label per text, got {type(labels).__name__}")
        if len(labels) != len(texts):
            raise FewShotError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
        if not texts:
            raise FewShotError("no texts to score: pass at least one text and its label")
        predicted = self.predict(texts)
        if self._multilabel is not None:
            from .multilabel.classifier_mode import cell_labels

            gold = [set(cell_labels(cell)) - {self.config.unknown_label} for cell in labels]
            return float(np.mean([set(p) == g for p, g in zip(predicted, gold)]))
        return float(np.mean(np.asarray(predicted, dtype=object) == np.asarray(clean_labels(labels), dtype=object)))

    def labels_from_proba(self, probs: np.ndarray, scores: np.ndarray | None = None, **unknown_overrides: Any
                          ) -> np.ndarray:
        """Labels for rows of ``predict_proba`` output, applying the unknown options (score thresholds need
        ``scores``).

        Keyword overrides (``min_confidence``, ``auto_unknown``, ``score_threshold``; the old ``threshold``
        with a FutureWarning) replace the configured ones for this call only. A score of ``-inf`` (the
        "none of these" examples won) is always ``unknown_label``.
        """
        if self._multilabel is not None:
            return self._multilabel.labels_from_proba(self, probs, scores, **unknown_overrides)
        if "threshold" in unknown_overrides:
            warnings.warn("labels_from_proba(threshold=...) is deprecated: pass min_confidence= or "
                          "auto_unknown=True", FutureWarning, stacklevel=2)
            unknown_overrides |= unknown_options(unknown_overrides.pop("threshold"))
        bad = sorted(set(unknown_overrides) - {"min_confidence", "auto_unknown", "score_threshold"})
        if bad:
            raise FewShotError(f"labels_from_proba takes min_confidence, auto_unknown or score_threshold, got {bad}")
        config = replace(self.config, **unknown_overrides) if unknown_overrides else self.config
        if unknown_overrides:
            config.validate()
        out = self.classes_[probs.argmax(axis=1)] if len(probs) else np.array([], dtype=object)
        if not len(probs):
            return np.asarray(out, dtype=object)
        threshold = config.score_threshold
        if threshold is None and config.auto_unknown:
            if scores is None:
                raise FewShotError("auto_unknown=True needs in-scope scores; use predict_with_scores()")
            threshold = self.auto_threshold_
        reject = unknown.rejected(probs, scores, min_confidence=config.min_confidence, score_threshold=threshold)
        return np.asarray(np.where(reject, config.unknown_label, out), dtype=object)

    @takes_progress_bar("classifying")
    def predict_details(self, texts: Sequence[str], *, top: int = 3, n_matches: int = 3,
                        progress: Progress = None, **unknown_overrides: Any) -> list[Prediction]:
        """Per text: label, confidence, the ``top`` labels, and the support examples that matched (keyword
        overrides of the unknown options as in :meth:`labels_from_proba`, and of ``ambiguity_margin``).

        An answer that is not unknown and whose top two probabilities differ by less than ``ambiguity_margin``
        is ``ambiguous`` ("A or B?"), with those two labels as ``alternatives``; its ``label`` stays the top one.
        With ``multi_label``: ``labels`` holds every predicted label (``label`` their ``;``-joined cell, or
        ``unknown_label``) and ``label_matches`` each one's nearest examples; never ambiguous.
        """
        if self._multilabel is not None:
            return self._multilabel.predict_details(self, texts, top, n_matches, progress,
                                                   types=(Prediction, Match), **unknown_overrides)
        margin = unknown_overrides.pop("ambiguity_margin", self.config.ambiguity_margin)
        if margin != self.config.ambiguity_margin:
            replace(self.config, ambiguity_margin=margin).validate()
        texts = clean_texts(texts, "texts")
        self._check_ready()
        if not texts:
            return []
        vectors = self.encoder.encode(texts, progress=progress)
        probs, sims, rows, none_wins = self._proba_and_neighbours(vectors, max(self.config.k, n_matches))
        scores = self._scores(vectors, sims, rows, none_wins)
        labels = self.labels_from_proba(probs, scores, **unknown_overrides)
        flagged = unknown.ambiguous(probs, margin, labels == self.config.unknown_label)
        s = self.support
        out = []
        for p, label, s_row, r_row, score, tie in zip(probs, labels, sims, rows, scores, flagged):
            order = np.argsort(-p)[:top]
            matches = [Match(s.texts[r], s.labels[r], float(sim)) for sim, r in zip(s_row, r_row) if r >= 0]
            pair = [str(self.classes_[i]) for i in np.argsort(-p, kind="stable")[:2]] if tie else []
            out.append(Prediction(str(label), float(p.max()), [(str(self.classes_[i]), float(p[i])) for i in order],
                                  matches[:n_matches], float(score), bool(tie), pair))
        return out

    def explain(self, text: str, k: int = 5) -> list[Match]:
        """The ``k`` support examples most similar to ``text``, most similar first."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise FewShotError(f"k must be a whole number of at least 1, got {k!r}")
        (text,) = clean_texts([text], "text")
        s = self.support
        if not s.texts:
            raise FewShotError("no examples yet: call fit() or add_examples() first")
        sims, ids = s.index.search(self.encoder.encode([text]), k)
        return [Match(s.texts[s.id_to_row[int(i)]], s.labels[s.id_to_row[int(i)]], float(sim))
                for sim, i in zip(sims[0], ids[0]) if i >= 0]

    # ---- fine-tuning (fewshot.finetuned, imported only when used) ----------------------------------
    @takes_progress_bar("fine-tuning", "step")
    def finetune(self, config: FinetuneConfig | None = None, *, progress: Progress = None,
                 cancel: threading.Event | Callable[[], bool] | None = None) -> FinetuneReport:
        """Adapt the encoder's top layers to the current examples (and label names, with ``label_names``), then
        re-encode the examples with the adapted encoder and refit the rule; returns the report.

        Seconds to minutes (``config.time_budget``, 30 s by default; see docs/finetune.md). ``progress(done,
        total)`` counts training steps; ``cancel`` (an Event, or a callable returning True) stops at the next
        step. When cancelled, or when the cross-validated estimate sees no gain, the classifier is unchanged
        (``report.kept`` is False). Always starts from the instant encoder, which other classifiers keep
        sharing: this one gets a private adapted copy. ``fit``, ``add_examples`` and ``remove_*`` afterwards
        keep the adapted encoder; :meth:`undo_finetune` goes back.
        """
        from .finetuned import finetune_classifier

        return finetune_classifier(self, config, progress=progress, cancel=cancel)

    def undo_finetune(self) -> FewShotClassifier:
        """Back to the instant encoder (the examples re-encoded by it, from its cache); returns self."""
        if self._finetune is not None:
            from .finetuned import undo_finetune

            undo_finetune(self)
        return self

    @property
    def finetuned_(self) -> FinetuneReport | None:
        """The report of the fine-tuning in use, or None for the instant encoder."""
        return None if self._finetune is None else self._finetune.report

    def overlap_hint(self) -> OverlapHint:
        """Whether labels overlap on held-out examples (cross-validated on the stored vectors, no encoding):
        "these labels overlap: fine-tuning may help". Single-label only, as fine-tuning is."""
        from .finetuned import classifier_overlap_hint

        if self._multilabel is not None:
            raise FewShotError("overlap_hint is about fine-tuning, which supports single-label classifiers; this "
                               "one has multi_label=True")
        return classifier_overlap_hint(self)

    # ---- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write a portable folder: ``examples.csv``, ``config.json``, ``index.faiss``, and when fine-tuned
        ``finetune.safetensors`` (see :mod:`fewshot.persist`, :mod:`fewshot.finetuned`); a path ending in
        ``.zip`` gets those files zipped (what the app's *Load classifier* takes)."""
        from . import __version__

        directory = Path(directory).expanduser()  # "~/clf" is the home folder's, as pandas reads it
        if persist.is_zip_path(directory):
            with tempfile.TemporaryDirectory(prefix="fewshot-save-") as tmp:
                return persist.write_zip(self.save(Path(tmp) / "classifier"), directory)

        meta = {"fewshot_version": __version__, "encoder": self.encoder.describe(), "ids": self.support.ids,
                "config": asdict(self.config) | {"model": self.encoder.name,  # what is in use ("auto" resolved)
                                                 "extra_layers": list(getattr(self.encoder, "extra_layers", ()))}}
        files: dict[str, bytes] = {}
        if self._finetune is not None:
            from .finetuned import saved_section

            meta["finetune"], files = saved_section(self._finetune)
        if self._multilabel is not None:  # multilabel.npz + multilabel.json (fewshot.multilabel.classifier_mode)
            files = files | self._multilabel.saved_files()
        return persist.write_folder(directory, self.examples, self.support.index, meta, files=files)

    def __copy__(self) -> FewShotClassifier:
        """A shallow copy (the same examples, index and encoder), as ``copy.copy`` gives of other objects; pickling
        and ``copy.deepcopy`` go through the folder (``__reduce__``)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any], dict[str, bytes] | None]]:
        """Pickle (``joblib.dump``, scikit-learn's ``n_jobs``) through :meth:`save`'s folder: its files travel as
        bytes and the copy is :meth:`load`-ed from them, so the encoder is loaded again by name, not copied.
        A classifier without examples travels as its options."""
        params = {k: v for k, v in self.get_params().items() if k != "encoder"}
        if self._given_encoder is not None:  # rebuilt by name: the model and layers in use
            params |= {"model": self.encoder.name, "extra_layers": list(getattr(self.encoder, "extra_layers", ())),
                       "int8": bool(getattr(self.encoder, "int8", False))}
        if not self._has_examples():
            return _unpickle, (params, None)
        with tempfile.TemporaryDirectory(prefix="fewshot-pickle-") as tmp:
            folder = self.save(Path(tmp) / "classifier")
            files = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}
        return _unpickle, (params, files)

    @classmethod
    def load(cls, directory: str | Path, *, encoder: Encoder | None = None, allow_model_paths: bool = True,
             reencode: bool = False, **overrides: Any) -> FewShotClassifier:
        """Load a folder written by :meth:`save`, or a zip of one (the app's *Save classifier*); no re-encoding
        when the index matches the examples.

        Only JSON, CSV and a FAISS index are read (never a pickle). ``allow_model_paths=False`` (for
        uploads) refuses a config that points the encoder at a local path. A damaged or foreign index is
        rebuilt from the examples. ``overrides`` replace saved options; configs saved under old option
        names load as their current equivalents.

        The folder records its encoder; loading it with another model (``encoder=`` an Encoder of another
        model, or where the saved name now resolves differently, e.g. ``"default"`` without its trained
        folder) raises :class:`FewShotError` naming both. To re-encode the examples with another model on
        purpose, say so: ``model="minilm"`` (an override) or ``reencode=True`` (with ``encoder=``). A
        different ``int8`` or ``extra_layers`` of the same model re-encodes without asking.
        """
        with persist.opened(directory) as unpacked:  # "~" expanded there
            return cls._load(directory, unpacked, encoder, allow_model_paths, reencode, overrides)

    @classmethod
    def _load(cls, directory: str | Path, unpacked: Path, encoder: Encoder | None, allow_model_paths: bool,
              reencode: bool, overrides: dict[str, Any]) -> FewShotClassifier:
        """:meth:`load` from the folder ``unpacked`` (``directory`` itself, or its zip unpacked)."""
        folder = persist.read_folder(unpacked, overrides, allow_model_paths=allow_model_paths, name=directory)
        saved_multi = bool(folder.meta.get("config", {}).get("multi_label", False))
        if saved_multi and not overrides.get("multi_label", True):
            raise FewShotError(f"{directory} is a multi-label classifier; multi_label=False would read each label "
                               "combination ('a;b') as a label of its own: load it as saved")
        options = dict(folder.options)
        if "model" in overrides and "extra_layers" not in overrides and \
                overrides["model"] != folder.meta.get("config", {}).get("model"):
            options["extra_layers"] = "auto"  # the saved layers were chosen for the other model
        clf = cls(folder.model, encoder=encoder, **options)
        mismatch = persist.encoder_mismatch(folder, clf.encoder)
        if mismatch and not (reencode or "model" in overrides):
            raise FewShotError(f"{directory}: {mismatch}. Its examples' vectors come from the saved encoder: load "
                               "it with that one, or re-encode them with this one on purpose (load(..., "
                               "model=NAME) or load(..., encoder=..., reencode=True); --model NAME on the command "
                               "line)")
        reusable = True
        if "finetune" in folder.meta or "finetune" in (folder.meta.get("encoder") or {}):  # finetune.safetensors
            from .finetuned import restore

            reusable = restore(clf, folder)
        index = persist.saved_index(folder, clf.encoder) if reusable else None
        if index is not None:
            clf.support = SupportSet.restore(folder.texts, folder.labels, folder.meta["ids"], index)
            if clf._multilabel is not None:
                clf._multilabel.restore(clf, folder)  # the saved multi-label model: nothing is refitted
            clf._refit()
            return clf
        if folder.texts:
            clf._add(clean_texts(folder.texts, "texts"), clean_texts(folder.labels, "labels"),
                     clf.encoder.encode(folder.texts))
        return clf


def _unpickle(params: dict[str, Any], files: dict[str, bytes] | None) -> FewShotClassifier:
    """A pickled :class:`FewShotClassifier` (see ``__reduce__``): made from its options, or loaded from its
    folder's files."""
    if files is None:
        return FewShotClassifier(**params)
    with tempfile.TemporaryDirectory(prefix="fewshot-pickle-") as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        return FewShotClassifier.load(tmp)
