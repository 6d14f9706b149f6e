"""FewShotClassifier: a scikit-learn shaped few-shot text classifier (examples in, labels out, no training run)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import __version__
from .encoder import Encoder, ProgressFn
from .errors import FewShotError, FewShotWarning
from .index import SupportIndex
from .matching import RULES, LinearHead, attention_probs, fit_prototype_head
from .maml import ADAPT_METHODS, AdaptedHead, MetaModel, fit_adapted_head

_CONFIGURED = object()  # labels_from_proba: "use the configured unknown_threshold"
CONFIG_FILE = "config.json"
EXAMPLES_FILE = "examples.csv"
INDEX_FILE = "index.faiss"


@dataclass
class ClassifierConfig:
    """Everything that decides predictions besides the examples; saved with the classifier."""

    model: str | None = None
    rule: str = "head"
    temperature: float = 0.1  # head / prototype logits scale
    matching_temperature: float = 0.05
    k: int = 10  # nearest support examples for matching attention and explanations
    label_names: bool = True  # the label's name (``lost_card`` -> "lost card") as one extra example
    center: bool = True
    head_steps: int = 200
    head_weight_decay: float = 1e-4
    unknown_threshold: float | str | None = None  # confidence in [0, 1], "auto" (in-scope score), or None
    unknown_label: str = "unknown"
    auto_max_drop: float = 0.02  # "auto": in-scope accuracy the threshold may cost, estimated on held-out examples
    auto_quantile: float | None = None  # "auto" by quantile instead: reject below this share of held-out scores
    batch_size: int = 64
    quantize: bool = False
    extra_layers: list[int] | str = "auto"  # encoder layers appended to the embedding (see fewshot.encoder)
    adapt: str = "none"  # "maml" | "fomaml" | "reptile": fit the head with the model folder's inner loop

    def validate(self) -> None:
        if self.rule not in RULES:
            raise FewShotError(f"rule must be one of {RULES}, got {self.rule!r}")
        for name in ("temperature", "matching_temperature"):
            if not getattr(self, name) > 0:
                raise FewShotError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.k < 1:
            raise FewShotError(f"k must be >= 1, got {self.k!r}")
        t = self.unknown_threshold
        if t is not None and t != "auto" and (isinstance(t, str) or not 0.0 <= t <= 1.0):
            raise FewShotError(f"unknown_threshold must be a confidence in [0, 1], 'auto' or None, got {t!r}")
        if not 0.0 <= self.auto_max_drop < 0.5:
            raise FewShotError(f"auto_max_drop must be in [0, 0.5), got {self.auto_max_drop!r}")
        if self.auto_quantile is not None and not 0.0 < self.auto_quantile < 0.5:
            raise FewShotError(f"auto_quantile must be None or in (0, 0.5), got {self.auto_quantile!r}")
        if not (self.extra_layers == "auto" or (isinstance(self.extra_layers, (list, tuple))
                                                 and all(isinstance(k, int) for k in self.extra_layers))):
            raise FewShotError(f"extra_layers must be 'auto' or a list of layer numbers, got {self.extra_layers!r}")
        if self.adapt not in ADAPT_METHODS:
            raise FewShotError(f"adapt must be one of {ADAPT_METHODS}, got {self.adapt!r}")
        if self.adapt != "none" and self.rule == "matching":
            raise FewShotError(f"adapt={self.adapt!r} fits a head, but rule='matching' uses none; "
                               "pass rule='head' (the default) or adapt='none'")


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
    score: float = 0.0  # in-scope score: higher = closer to the examples (see FewShotClassifier.score)


def _clean_texts(texts: Iterable[Any], what: str) -> list[str]:
    if isinstance(texts, str):
        raise FewShotError(f"{what} must be a list of strings, got a single string {texts[:40]!r}")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise FewShotError(f"{what}[{i}] must be a string, got {type(t).__name__} {t!r}")
        if not t.strip():
            raise FewShotError(f"{what}[{i}] is empty; every text needs some words")
        out.append(t)
    return out


def _label_text(label: str) -> str:
    return " ".join(label.replace("_", " ").replace("-", " ").split())


_threads_lock = threading.Lock()


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run the enclosed torch work on one thread, then restore the setting.

    Why: torch splits a large sum across its threads, so a head fitted on 2 threads differs in the last
    bits from one fitted on 1, and so do the confidences it gives. Ray actors run on 1 thread and refit
    the classifier they are sent; measured with HWU64 5-shot examples (320) and 600 test texts, without
    this 7 output rows (2 with int8) differed from the local engine's. Fitting a head is small work: one
    thread costs little. The lock keeps two fits in two threads from restoring each other's setting.
    """
    with _threads_lock:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


class FewShotClassifier:
    """Classify texts from a few examples per label.

    >>> clf = FewShotClassifier().fit(["where is my refund", "card stolen"], ["refund", "lost_card"])
    >>> clf.predict(["I lost my card"])  # doctest: +SKIP
    array(['lost_card'], dtype=object)

    ``rule``: ``"head"`` (default), ``"matching"`` or ``"prototype"`` (see :mod:`fewshot.matching`).
    ``unknown_threshold``: a float: below this top probability ``predict`` answers ``unknown_label``;
    ``"auto"``: below a threshold on the in-scope score derived from the examples alone (5-fold
    cross-validation, see ``auto_threshold_``): the threshold expected to cost ``auto_max_drop`` (2 %) of
    in-scope accuracy, or, with ``auto_quantile`` set, that quantile of the held-out examples' scores.
    ``adapt``: ``"none"`` (default) or ``"maml"`` / ``"fomaml"`` / ``"reptile"``: fit the head with the
    meta-learned inner loop stored in the model folder (see :mod:`fewshot.maml`).

    Examples labelled ``unknown_label`` are "none of these" examples: they are no class (``classes_``
    and ``predict_proba`` leave them out), but a text whose nearest rule output is theirs is answered
    ``unknown_label`` whatever the threshold, and its in-scope score is ``-inf``.
    """

    def __init__(self, model: str | None = None, *, encoder: Encoder | None = None, **options: Any) -> None:
        known = {f.name for f in fields(ClassifierConfig)}
        bad = sorted(set(options) - known)
        if bad:
            raise FewShotError(f"unknown option(s) {bad}; expected some of {sorted(known - {'model'})}")
        self.config = ClassifierConfig(model=model, **options)
        self.config.validate()
        layers = self.config.extra_layers
        if layers == "auto" and self.config.adapt != "none":
            layers = []  # a meta-learned inner loop works on the sentence embedding it was trained on
        self.encoder = encoder or Encoder(model, batch_size=self.config.batch_size,
                                          quantize=self.config.quantize, extra_layers=layers)
        self.config.extra_layers = list(getattr(self.encoder, "extra_layers", ()))  # what is in use, for save()
        self._texts: list[str] = []
        self._labels: list[str] = []
        self._ids: list[int] = []
        self._next_id = 0
        self.index = SupportIndex(self.encoder.dim)
        self._vectors = np.empty((0, self.encoder.dim), dtype=np.float32)
        self._fitted_head: LinearHead | AdaptedHead | None = None
        self._meta_model: MetaModel | None = None
        self.classes_: np.ndarray = np.array([], dtype=object)
        if self.config.adapt != "none":
            self._load_meta_model()  # a missing or mismatched model folder fails here, not at the first fit

    # ---- defining labels -------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[str], *, progress: ProgressFn | None = None
            ) -> FewShotClassifier:
        """Replace all examples with ``texts`` labelled ``labels``; returns self."""
        texts = _clean_texts(texts, "texts")
        labels = _clean_texts(labels, "labels")
        if len(texts) != len(labels):
            raise FewShotError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
        if not texts:
            raise FewShotError("no examples given: pass at least one example for each of 2 labels")
        distinct = sorted(set(labels) - {self.config.unknown_label})
        if len(distinct) < 2:
            extra = (f" (examples labelled {self.config.unknown_label!r} are 'none of these' examples, not a label)"
                     if self.config.unknown_label in labels else "")
            raise FewShotError(f"need at least 2 labels to choose between, got only {distinct!r}{extra}")
        self._texts, self._labels, self._ids = [], [], []
        self.index = SupportIndex(self.encoder.dim)
        self._vectors = np.empty((0, self.encoder.dim), dtype=np.float32)
        self._add(texts, labels, self.encoder.encode(texts, progress=progress))
        return self

    def add_examples(self, label: str, texts: Sequence[str]) -> FewShotClassifier:
        """Add examples to a label (new or existing); returns self."""
        (label,) = _clean_texts([label], "label")
        texts = _clean_texts(texts, "texts")
        if not texts:
            raise FewShotError(f"no texts given for label {label!r}")
        self._add(texts, [label] * len(texts), self.encoder.encode(texts))
        return self

    def remove_label(self, label: str) -> FewShotClassifier:
        """Forget a label and all its examples; returns self."""
        if label not in self._labels:
            raise FewShotError(f"unknown label {label!r}; known labels: {list(self.classes_)}")
        keep = [i for i, lab in enumerate(self._labels) if lab != label]
        self._remove_rows(keep)
        return self

    def remove_example(self, text: str, label: str | None = None) -> FewShotClassifier:
        """Forget one example text (of ``label`` if given); returns self."""
        drop = [i for i, (t, lab) in enumerate(zip(self._texts, self._labels))
                if t == text and (label is None or lab == label)]
        if not drop:
            raise FewShotError(f"no example {text!r}" + (f" under label {label!r}" if label else ""))
        self._remove_rows([i for i in range(len(self._texts)) if i not in set(drop)])
        return self

    @property
    def examples(self) -> pd.DataFrame:
        """The support examples as a ``text,label`` DataFrame."""
        return pd.DataFrame({"text": self._texts, "label": self._labels})

    def counts(self) -> dict[str, int]:
        """Examples per label."""
        return {str(k): int(v) for k, v in pd.Series(self._labels, dtype=object).value_counts().sort_index().items()}

    def _add(self, texts: list[str], labels: list[str], vectors: np.ndarray) -> None:
        seen: dict[str, str] = dict(zip(self._texts, self._labels))
        for text, label in zip(texts, labels):
            if seen.setdefault(text, label) != label:
                warnings.warn(f"the example {text[:60]!r} is under two labels, {seen[text]!r} and {label!r}; "
                              "it cannot help tell them apart", FewShotWarning, stacklevel=3)
        ids = list(range(self._next_id, self._next_id + len(texts)))
        self._next_id += len(texts)
        self.index.add(np.array(ids), vectors)
        self._texts += texts
        self._labels += labels
        self._ids += ids
        self._vectors = np.vstack([self._vectors, vectors])
        self._refit()

    def _remove_rows(self, keep: list[int]) -> None:
        keep_set = set(keep)
        gone = [self._ids[i] for i in range(len(self._ids)) if i not in keep_set]
        self.index.remove(np.array(gone, dtype=np.int64))
        self._texts = [self._texts[i] for i in keep]
        self._labels = [self._labels[i] for i in keep]
        self._ids = [self._ids[i] for i in keep]
        self._vectors = self._vectors[keep]
        self._refit()

    def _refit(self) -> None:
        """Recompute classes and the fitted rule from the current examples (fast: no encoding)."""
        unknown = self.config.unknown_label
        self.classes_ = np.array(sorted(set(self._labels) - {unknown}), dtype=object)
        self._class_index = {c: i for i, c in enumerate(self.classes_)}
        self._class_index[unknown] = len(self.classes_)  # "none of these" examples: one extra rule class
        self._has_none = unknown in self._labels
        self._label_idx = np.array([self._class_index[lab] for lab in self._labels], dtype=np.int64)
        self._id_to_row = {id_: row for row, id_ in enumerate(self._ids)}
        self._fitted_head = None
        self._auto_threshold: float | None = None
        self._name_vectors = np.empty((0, self.encoder.dim), dtype=np.float32)
        if len(self.classes_) < 2 or self.config.rule == "matching":
            return
        if self.config.label_names:
            self._name_vectors = self.encoder.encode([_label_text(c) for c in self.classes_])
        self._fitted_head = self._fit_head(self._vectors, self._label_idx)

    def _fit_head(self, x: np.ndarray, y: np.ndarray) -> LinearHead | AdaptedHead:
        """Fit the configured rule's head on examples ``x`` with label indices ``y`` (plus label names), on
        one torch thread (see :func:`_one_torch_thread`)."""
        with _one_torch_thread():
            return self._fit_head_here(x, y)

    def _fit_head_here(self, x: np.ndarray, y: np.ndarray) -> LinearHead | AdaptedHead:
        if self.config.label_names:
            x, y = np.vstack([x, self._name_vectors]), np.concatenate([y, np.arange(len(self.classes_))])
        n_classes = len(self.classes_) + self._has_none
        if self.config.adapt != "none":
            return fit_adapted_head(x, y, n_classes, self._load_meta_model())
        steps = self.config.head_steps if self.config.rule == "head" else 0
        return fit_prototype_head(x, y, n_classes, temperature=self.config.temperature,
                                  weight_decay=self.config.head_weight_decay, steps=steps,
                                  center=self.config.center)

    def _load_meta_model(self) -> MetaModel:
        """The meta-learned inner loop of the model folder (``adapt`` != "none"), loaded once."""
        if self._meta_model is None:
            folder = self.encoder.spec.trained_dir
            if folder is None:
                raise FewShotError(f"adapt={self.config.adapt!r} needs a model folder trained with "
                                   f"`fewshot train --method {self.config.adapt}`; model {self.encoder.name!r} "
                                   "is not one. Pass model=FOLDER or adapt='none'")
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
        sims, ids = self.index.search(vectors, k)
        rows = np.vectorize(lambda i: self._id_to_row.get(int(i), -1), otypes=[np.int64])(ids)
        # FAISS's float32 similarities change in the last digit with the number of queries per search; one
        # dot product per (text, neighbour) makes them a function of the text alone (batch-independent)
        exact = np.einsum("nd,nkd->nk", vectors, self._vectors[np.maximum(rows, 0)])
        sims = np.where(rows >= 0, exact, sims).astype(np.float32)
        n_rule = len(self.classes_) + self._has_none
        if self.config.rule == "matching":
            probs, _ = attention_probs(sims, self._neighbour_labels(rows), n_rule, self.config.matching_temperature)
        else:
            assert self._fitted_head is not None  # set by _refit whenever there are >= 2 labels
            probs = self._fitted_head.predict_proba(vectors)
        if not self._has_none:
            return probs, sims, rows, np.zeros(len(probs), dtype=bool)
        none_wins = probs.argmax(axis=1) == len(self.classes_)
        real = probs[:, :-1]
        mass = real.sum(axis=1, keepdims=True)
        real = np.where(mass > 0, real / np.maximum(mass, 1e-300), 1.0 / len(self.classes_))
        return real, sims, rows, none_wins

    def _neighbour_labels(self, rows: np.ndarray) -> np.ndarray:
        """Label index of each neighbour row (``len(classes_)``: "none of these"; -1: no neighbour)."""
        return np.where(rows >= 0, self._label_idx[np.maximum(rows, 0)], -1)

    def _scores(self, vectors: np.ndarray, sims: np.ndarray, rows: np.ndarray, none_wins: np.ndarray) -> np.ndarray:
        """In-scope score: the top real-label logit of the fitted head, or the top similarity to a real
        label's example for ``matching``; ``-inf`` where the "none of these" examples win."""
        if self._fitted_head is None:
            labels = self._neighbour_labels(rows)
            real = (labels >= 0) & (labels < len(self.classes_))
            scores = np.where(real, sims, -np.inf).max(axis=1).astype(np.float64)
        else:
            scores = _head_scores(self._fitted_head, vectors, len(self.classes_))
        return np.where(none_wins, -np.inf, scores)

    @property
    def auto_threshold_(self) -> float:
        """The in-scope score below which ``unknown_threshold="auto"`` answers unknown (computed once per label set).

        Each label's examples are split into 5 folds; the rule is refitted without each fold and scores
        and classifies the held-out examples, as it will texts it has not seen. The threshold rejects
        ``auto_max_drop`` of the held-out examples from among those classified right (the in-scope accuracy
        it is expected to cost; :func:`threshold_for_drop`), or, with ``auto_quantile`` set, is that quantile
        of all their scores (the earlier rule; it costs more accuracy the more examples are right).
        """
        self._check_ready()
        if self._auto_threshold is None:
            scores, right = self._cross_validated_scores()
            if self.config.auto_quantile is not None:
                self._auto_threshold = float(np.quantile(scores, self.config.auto_quantile))
            else:
                self._auto_threshold = threshold_for_drop(scores, right, self.config.auto_max_drop)
        return self._auto_threshold

    def _cross_validated_scores(self, folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """In-scope scores of held-out examples, and whether the rule fitted without them classifies them right."""
        rng = np.random.default_rng(seed)
        fold = np.full(len(self._labels), -1, dtype=np.int64)  # "none of these" examples always train
        for c in range(len(self.classes_)):
            rows = np.flatnonzero(self._label_idx == c)
            fold[rows] = rng.permutation(len(rows)) % folds
        scores, right = [], []
        for f in range(folds):
            train, test = fold != f, fold == f
            if not test.any() or len(np.unique(self._label_idx[train])) < 2:
                continue
            if self.config.rule == "matching":
                real_train = np.flatnonzero(train & (self._label_idx < len(self.classes_)))
                sims = self._vectors[test] @ self._vectors[real_train].T
                scores.append(sims.max(axis=1))
                right.append(self._label_idx[real_train][sims.argmax(axis=1)] == self._label_idx[test])
                continue
            head = self._fit_head(self._vectors[train], self._label_idx[train])
            scores.append(_head_scores(head, self._vectors[test], len(self.classes_)))
            right.append(head.predict_proba(self._vectors[test]).argmax(axis=1) == self._label_idx[test])
        if not scores:
            raise FewShotError("unknown_threshold='auto' needs at least 2 examples for some label; add examples")
        return np.concatenate(scores), np.concatenate(right)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """In-scope score per text (higher: closer to the examples); compare with ``auto_threshold_``."""
        texts = _clean_texts(texts, "texts")
        self._check_ready()
        if not texts:
            return np.empty(0)
        vectors = self.encoder.encode(texts)
        _, sims, rows, none_wins = self._proba_and_neighbours(vectors, self.config.k)
        return self._scores(vectors, sims, rows, none_wins)

    def predict_with_scores(self, texts: Sequence[str], *, progress: ProgressFn | None = None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(labels, probabilities, in-scope scores)`` in one pass (what batch jobs need)."""
        texts = _clean_texts(texts, "texts")
        self._check_ready()
        if not texts:
            return np.array([], dtype=object), np.empty((0, len(self.classes_))), np.empty(0)
        vectors = self.encoder.encode(texts, progress=progress)
        probs, sims, rows, none_wins = self._proba_and_neighbours(vectors, self.config.k)
        scores = self._scores(vectors, sims, rows, none_wins)
        return self.labels_from_proba(probs, scores), probs, scores

    def predict_proba(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        """Probabilities (n, n_classes); columns follow ``classes_``."""
        texts = _clean_texts(texts, "texts")
        self._check_ready()
        if not texts:
            return np.empty((0, len(self.classes_)))
        return self._proba_and_neighbours(self.encoder.encode(texts, progress=progress), self.config.k)[0]

    def predict(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        """The most likely label per text (``unknown_label`` below ``unknown_threshold``)."""
        return self.predict_with_scores(texts, progress=progress)[0]

    def labels_from_proba(self, probs: np.ndarray, scores: np.ndarray | None = None, *,
                          threshold: float | str | None | object = _CONFIGURED) -> np.ndarray:
        """Labels for rows of ``predict_proba`` output, applying ``unknown_threshold`` (``"auto"`` needs scores).

        ``threshold`` overrides the configured one for this call (the configuration is left unchanged).
        A score of ``-inf`` (the "none of these" examples won) is always ``unknown_label``.
        """
        out = self.classes_[probs.argmax(axis=1)] if len(probs) else np.array([], dtype=object)
        if threshold is _CONFIGURED:
            threshold = self.config.unknown_threshold
        if not len(probs):
            return np.asarray(out, dtype=object)
        none_wins = np.isneginf(scores) if scores is not None else np.zeros(len(probs), dtype=bool)
        if threshold is None:
            reject = none_wins
        elif threshold == "auto":
            if scores is None:
                raise FewShotError("unknown_threshold='auto' needs in-scope scores; use predict_with_scores()")
            reject = scores < self.auto_threshold_
        else:
            reject = (probs.max(axis=1) < threshold) | none_wins
        return np.asarray(np.where(reject, self.config.unknown_label, out), dtype=object)

    def predict_details(self, texts: Sequence[str], *, top: int = 3, n_matches: int = 3,
                        progress: ProgressFn | None = None) -> list[Prediction]:
        """Per text: label, confidence, the ``top`` labels, and the support examples that matched."""
        texts = _clean_texts(texts, "texts")
        self._check_ready()
        if not texts:
            return []
        vectors = self.encoder.encode(texts, progress=progress)
        probs, sims, rows, none_wins = self._proba_and_neighbours(vectors, max(self.config.k, n_matches))
        scores = self._scores(vectors, sims, rows, none_wins)
        labels = self.labels_from_proba(probs, scores)
        out = []
        for p, label, s_row, r_row, score in zip(probs, labels, sims, rows, scores):
            order = np.argsort(-p)[:top]
            matches = [Match(self._texts[r], self._labels[r], float(s)) for s, r in zip(s_row, r_row) if r >= 0]
            out.append(Prediction(str(label), float(p.max()), [(str(self.classes_[i]), float(p[i])) for i in order],
                                  matches[:n_matches], float(score)))
        return out

    def explain(self, text: str, k: int = 5) -> list[Match]:
        """The ``k`` support examples most similar to ``text``, most similar first."""
        (text,) = _clean_texts([text], "text")
        if not self._texts:
            raise FewShotError("no examples yet: call fit() or add_examples() first")
        sims, ids = self.index.search(self.encoder.encode([text]), k)
        return [Match(self._texts[self._id_to_row[int(i)]], self._labels[self._id_to_row[int(i)]], float(s))
                for s, i in zip(sims[0], ids[0]) if i >= 0]

    # ---- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write a portable folder: ``examples.csv``, ``config.json``, ``index.faiss``."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            self.examples.to_csv(staging / EXAMPLES_FILE, index=False)
            self.index.save(staging / INDEX_FILE)
            config = {"fewshot_version": __version__, "encoder": self.encoder.describe(), "ids": self._ids,
                      "config": asdict(self.config) | {"model": self.encoder.name}}
            (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2))
            _swap_in(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, encoder: Encoder | None = None, allow_model_paths: bool = True,
             **overrides: Any) -> FewShotClassifier:
        """Load a folder written by :meth:`save` (no re-encoding when the index matches the examples).

        Only JSON, CSV and a FAISS index are read (never a pickle). ``allow_model_paths=False`` (for
        uploads) refuses a config that points the encoder at a local path. A damaged or foreign index is
        rebuilt from the examples.
        """
        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file() and (_previous(directory) / CONFIG_FILE).is_file():
            directory = _previous(directory)  # a save was interrupted between its two renames
        if not (directory / CONFIG_FILE).is_file():
            raise FewShotError(f"{directory} is not a saved classifier: {CONFIG_FILE} is missing")
        try:
            meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
            options = dict(meta["config"]) | overrides
            model = options.pop("model")
            examples = pd.read_csv(directory / EXAMPLES_FILE, dtype=str, keep_default_na=False)
            texts, labels = examples["text"].tolist(), examples["label"].tolist()
        except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError) as exc:
            raise FewShotError(f"{directory} is a damaged saved classifier ({type(exc).__name__}: {exc}); "
                               "save it again or rebuild it from its examples CSV") from exc
        if not allow_model_paths and not _is_named_model(model):
            raise FewShotError(f"{directory} asks for the encoder {model!r}; only 'default', 'minilm' or a hub "
                               "id are accepted from an uploaded classifier")
        clf = cls(model, encoder=encoder, **options)
        index_path = directory / INDEX_FILE
        saved = meta.get("encoder", {})
        same_encoder = (saved.get("model") == clf.encoder.name  # vectors from another encoder would mislead
                        and bool(saved.get("quantized", False)) == bool(getattr(clf.encoder, "quantize", False))
                        and list(saved.get("extra_layers", [])) == list(getattr(clf.encoder, "extra_layers", ())))
        if same_encoder and index_path.is_file() and len(meta.get("ids", [])) == len(texts) and texts:
            try:
                index = SupportIndex.load(index_path)
            except RuntimeError:  # faiss cannot read it: truncated or not an index; re-encode instead
                index = SupportIndex(clf.encoder.dim)
            if index.dim == clf.encoder.dim and len(index) == len(texts):
                clf.index = index
                clf._texts, clf._labels, clf._ids = texts, labels, [int(i) for i in meta["ids"]]
                clf._next_id = max(clf._ids) + 1
                clf._vectors = index.vectors(np.array(clf._ids))
                clf._refit()
                return clf
        if texts:
            clf._add(_clean_texts(texts, "texts"), _clean_texts(labels, "labels"), clf.encoder.encode(texts))
        return clf


def threshold_for_drop(scores: np.ndarray, right: np.ndarray, max_drop: float) -> float:
    """The threshold that rejects ``max_drop`` of all rows among those ``right`` (the accuracy it costs).

    That is the ``max_drop * n / n_right`` quantile of the right rows' scores, interpolated linearly like
    ``np.quantile``, so that it moves smoothly as examples are added (with 30 examples one example is
    already 3.3 %). When no row is right the cost cannot be estimated: the lowest score (reject only what
    scores below every row), not the highest (reject everything, "free" by that estimate).
    """
    good = np.asarray(scores)[np.asarray(right, dtype=bool)]
    if not len(good):
        return float(np.min(scores))
    return float(np.quantile(good, min(1.0, max_drop * len(scores) / len(good))))


def _head_scores(head: LinearHead | AdaptedHead, vectors: np.ndarray, n_classes: int) -> np.ndarray:
    """A head's in-scope score: its top logit over the first ``n_classes`` (the real labels), or the top
    log-probability when it exposes no logits."""
    if hasattr(head, "logits"):
        return head.logits(vectors)[:, :n_classes].max(axis=1).astype(np.float64)
    return np.log(np.maximum(head.predict_proba(vectors)[:, :n_classes].max(axis=1), 1e-30))


def _previous(directory: Path) -> Path:
    return directory.with_name(directory.name + ".previous")


def _swap_in(staging: Path, directory: Path) -> None:
    """Replace ``directory`` by ``staging`` with renames only: at every instant one complete save exists."""
    previous = _previous(directory)
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        os.replace(directory, previous)
    os.replace(staging, directory)
    shutil.rmtree(previous, ignore_errors=True)


def _is_named_model(model: Any) -> bool:
    """A built-in name or a hub id (``org/name``), not a filesystem path."""
    if model in (None, "default", "minilm"):
        return True
    return isinstance(model, str) and model.count("/") == 1 and not model.startswith((".", "/", "~")) \
        and ".." not in model and "\\" not in model
