"""Out of scope: the in-scope score, the thresholds on it, the "none of these" examples (their one home), and a
batch's scores read together (:func:`batch_scores`).

A text is answered ``unknown_label`` when

- the "none of these" examples win it (the rule's extra class, fitted as label-sized groups of them:
  :func:`none_groups`; its in-scope score is then ``-inf``), or
- its top probability is below ``min_confidence``, or
- its in-scope score is below the score threshold: ``score_threshold`` when set, else, with
  ``auto_unknown``, the automatic threshold derived from the examples alone (:func:`auto_threshold`).

The in-scope score is the fitted head's top real-label logit (``matching``: the top similarity to a real
label's example): unbounded, higher means closer to the examples. The automatic threshold follows the
cross-validation idea of estimating a rejection threshold from held-out in-scope data (as the out-of-scope
baselines of Larson et al. 2019, "An Evaluation Dataset for Intent Classification and Out-of-Scope
Prediction", tune one on held-out data), here from the user's own examples in 5 folds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .config import ClassifierConfig
from .errors import FewShotError

FOLDS = 5
"""Folds of the cross-validated scores behind the automatic threshold."""
FOLD_SEED = 0
"""Seed of the fold assignment: the automatic threshold is a function of the examples and their order (folds are
drawn by position within each label, so the same examples listed in another order may move it)."""


def head_scores(head: Any, vectors: np.ndarray, n_classes: int) -> np.ndarray:
    """A head's in-scope score: its top logit over the first ``n_classes`` (the real labels), or the top
    log-probability when it exposes no logits."""
    if hasattr(head, "logits"):
        return head.logits(vectors)[:, :n_classes].max(axis=1).astype(np.float64)
    return np.log(np.maximum(head.predict_proba(vectors)[:, :n_classes].max(axis=1), 1e-30))


def matching_scores(sims: np.ndarray, neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``matching``'s in-scope score: the top similarity to a neighbour of a real label (-inf: none)."""
    real = (neighbour_labels >= 0) & (neighbour_labels < n_classes)
    return np.where(real, sims, -np.inf).max(axis=1).astype(np.float64)


def split_none(probs: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Rule output with a "none of these" column last -> ``(probabilities over the real labels, none wins)``.

    Where "none of these" wins, the real labels' probabilities are renormalised among themselves (uniform
    when they hold no mass), so ``predict_proba`` always describes the real labels.
    """
    none_wins = probs.argmax(axis=1) == n_classes
    real = probs[:, :-1]
    mass = real.sum(axis=1, keepdims=True)
    real = np.where(mass > 0, real / np.maximum(mass, 1e-300), 1.0 / n_classes)
    return real, none_wins


NONE_SEED = 0
"""Seed of the k-means that groups the "none of these" examples (the groups are a function of the examples)."""
NONE_KMEANS_RUNS = 4
"""k-means restarts (``n_init``) of that grouping; the run with the tightest groups is kept."""


def none_group_count(label_idx: np.ndarray, n_classes: int) -> int:
    """How many classes the rule fits for the "none of these" examples (label index ``n_classes``): one per
    label-sized group of them (their count over the median examples per real label), at least 1; 0 without."""
    none = label_idx == n_classes
    if not none.any():
        return 0
    counts = np.bincount(label_idx[~none], minlength=n_classes)
    size = max(1.0, float(np.median(counts[counts > 0]))) if (counts > 0).any() else 1.0
    return int(min(none.sum(), max(1, round(none.sum() / size))))


def none_groups(vectors: np.ndarray, k: int) -> np.ndarray:
    """The group (0, 1, ...) of each "none of these" example, from its vector: k-means into ``k`` groups (fewer
    when the examples have fewer distinct vectors; all 0 when ``k`` <= 1).

    Why: "none of these" examples are usually texts of several unrelated kinds. Fitted as one class, their
    mean is a generic point between them that draws in-scope texts (on HWU64 with held-out sibling intents,
    40 such examples cost 8 points of in-scope accuracy); as label-sized groups each stays where its texts
    are (docs/research/unknown-in-domain.md). Read back as one class by :class:`FoldedNoneHead`.
    """
    k = min(k, len(np.unique(vectors, axis=0)))  # k-means cannot make more groups than distinct rows
    if k <= 1:
        return np.zeros(len(vectors), dtype=np.int64)
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=k, n_init=NONE_KMEANS_RUNS, random_state=NONE_SEED)
    groups = kmeans.fit_predict(vectors.astype(np.float64))
    return np.unique(groups, return_inverse=True)[1].astype(np.int64)


class FoldedNoneHead:
    """A head fitted with the "none of these" examples as several classes (:func:`none_groups`), read as one:
    its last column is their summed probability (log-sum-exp of their logits)."""

    def __init__(self, head: Any, n_classes: int) -> None:
        self.head, self.n_classes = head, n_classes

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = self.head.logits(x)
        return np.column_stack([z[:, :self.n_classes], np.logaddexp.reduce(z[:, self.n_classes:], axis=1)])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = self.head.predict_proba(x)
        return np.column_stack([p[:, :self.n_classes], p[:, self.n_classes:].sum(axis=1)])


def threshold_for_drop(scores: np.ndarray, right: np.ndarray, max_drop: float) -> float:
    """The threshold that rejects ``max_drop`` of all rows among those ``right`` (the accuracy it costs).

    That is the ``q = max_drop * n / n_right`` quantile of the right rows' scores, interpolated linearly like
    ``np.quantile``, so that it moves smoothly as examples are added (with 30 examples one example is already
    3.3 %). On new texts it costs more than the budget with small label sets (about twice with 10 labels x 5
    examples); the Weibull plotting position would remove that bias but sits at the lowest right score there,
    which let plainly off-topic texts through on the bundled label sets (docs/research/unknown-in-domain.md). When no
    row is right the cost cannot be estimated: the lowest score (reject only what scores below every row),
    not the highest (reject everything, "free" by that estimate).
    """
    good = np.asarray(scores)[np.asarray(right, dtype=bool)]
    if not len(good):
        return float(np.min(scores))
    return float(np.quantile(good, min(1.0, max_drop * len(scores) / len(good))))


def cross_validated_scores(vectors: np.ndarray, label_idx: np.ndarray, n_classes: int,
                           fit_head: Callable[[np.ndarray, np.ndarray], Any] | None, *,
                           folds: int = FOLDS, seed: int = FOLD_SEED) -> tuple[np.ndarray, np.ndarray]:
    """In-scope scores of held-out examples, and whether the rule fitted without them classifies them right.

    Each real label's examples are split into ``folds`` folds ("none of these" examples, label index
    ``n_classes``, always train); ``fit_head(x, y)`` refits the head without a fold (``None``: the
    ``matching`` rule, which scores by the nearest remaining example).
    """
    rng = np.random.default_rng(seed)
    fold = np.full(len(label_idx), -1, dtype=np.int64)
    for c in range(n_classes):
        rows = np.flatnonzero(label_idx == c)
        fold[rows] = rng.permutation(len(rows)) % folds
    scores, right = [], []
    for f in range(folds):
        found = fold_scores(vectors, label_idx, n_classes, fit_head, fold != f, fold == f)
        if found is not None:
            scores.append(found[0])
            right.append(found[1])
    if not scores:
        raise FewShotError("the automatic unknown threshold (auto_unknown=True) needs at least 2 examples "
                           "for some label; add examples")
    return np.concatenate(scores), np.concatenate(right)


def fold_scores(vectors: np.ndarray, label_idx: np.ndarray, n_classes: int,
                fit_head: Callable[[np.ndarray, np.ndarray], Any] | None, train: np.ndarray, test: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """One fold of :func:`cross_validated_scores`: the ``test`` rows' in-scope scores and whether the rule fitted
    on the ``train`` rows (boolean masks) classifies them right; None when the fold cannot be scored."""
    if not test.any() or len(np.unique(label_idx[train])) < 2:
        return None
    if fit_head is None:
        real_train = np.flatnonzero(train & (label_idx < n_classes))
        sims = vectors[test] @ vectors[real_train].T
        return sims.max(axis=1), label_idx[real_train][sims.argmax(axis=1)] == label_idx[test]
    head = fit_head(vectors[train], label_idx[train])
    return (head_scores(head, vectors[test], n_classes),
            head.predict_proba(vectors[test]).argmax(axis=1) == label_idx[test])


def auto_threshold(scores: np.ndarray, right: np.ndarray, config: ClassifierConfig) -> float:
    """The automatic threshold from cross-validated ``scores``: the one expected to cost ``auto_max_drop`` of
    in-scope accuracy (:func:`threshold_for_drop`), or with ``auto_quantile`` set, that quantile of all scores."""
    if config.auto_quantile is not None:
        return float(np.quantile(scores, config.auto_quantile))
    return threshold_for_drop(scores, right, config.auto_max_drop)


BATCH_NEIGHBOURS = 10
"""Nearest texts of the batch each text is read with (chosen on the valid splits:
docs/research/unknown-in-domain.md)."""
BATCH_WEIGHT = 0.7
"""Weight of the batch reading's two terms, the neighbours' scores and the novelty (chosen on the valid splits)."""
BATCH_NEAR = 0.4
"""Least cosine for another text of the batch to count as a neighbour: a text with no similar one is read on its
own, and one whose neighbours barely pass it is hardly smoothed (chosen on the valid splits, with MiniLM-L6 and
layer 4 appended, the default's base; another encoder brings its own: :func:`similarity_floor`)."""
BATCH_NEAR_SHARE = 0.1
"""For an encoder other than the one the reading was tuned on, the floor is the cosine that this share of the pairs
of varied sentences exceed (:func:`calibrated_floor`; MiniLM-L6 with layer 4 appended: 0.41, about
:data:`BATCH_NEAR`), so that "alike" means as much for every encoder."""
LABEL_SETS_DIR = Path(__file__).resolve().parent / "label_sets"
"""The ready example label sets (``text,label`` CSVs shipped inside the package, four domains): the app offers them,
and their examples are the varied sentences :func:`calibrated_floor` reads (:func:`reference_texts`)."""
BATCH_SAME = 0.9
"""Cosine at which two texts of a batch count as copies of one text (not each other's neighbours)."""
BATCH_RISE = 0.25
"""Share of a rise that the batch reading keeps: a text takes the lower of its own score and the reading, plus this
share of any rise (0: the reading only lowers scores; 1: the reading itself). A low score among confident texts of
its label is raised a little, so the reading also gives back answers it would have withheld, without pulling other
domains' texts up with the examples' neighbours (chosen on the valid splits and on batches of training texts:
docs/research/unknown-in-domain.md)."""
BATCH_REACH = 0.8
"""Share of its reach a text passes on to its neighbours at each step when the examples' reach is propagated
through the batch (the alpha of Zhou et al. 2004; chosen on the valid splits: docs/research/unknown-in-domain.md)."""
BATCH_PRIOR = 0.1
"""What each text of the batch starts with as its own, "unknown" mass, against 1 per example."""
BATCH_MIN_TEXTS = 50
"""Fewest texts read together; a smaller batch keeps its own scores (a guard, not a measured optimum: in a few
dozen texts an intent rarely repeats; the measured batches hold 400 texts or more)."""


def reference_texts() -> list[str]:
    """The example texts of the bundled label sets (:data:`LABEL_SETS_DIR`), in file order."""
    import csv

    texts: list[str] = []
    for path in sorted(LABEL_SETS_DIR.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)]
    return texts


def calibrated_floor(vectors: np.ndarray, share: float = BATCH_NEAR_SHARE) -> float:
    """The cosine that ``share`` of the pairs of ``vectors`` (unit length: varied sentences, as
    :func:`reference_texts`) exceed: an encoder's own scale for "alike"."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(vectors) < 2 or not 0.0 < share < 1.0:
        raise FewShotError(f"calibrated_floor needs 2 vectors or more and a share between 0 and 1, got "
                           f"{len(vectors)} and {share!r}")
    cosines = (vectors @ vectors.T)[np.triu_indices(len(vectors), 1)]
    return float(np.quantile(cosines, 1.0 - share))


def encoder_floor(encoder: Any) -> float:
    """:func:`calibrated_floor` of ``encoder``'s vectors of :func:`reference_texts`: the floor for an encoder the
    batch reading was not tuned on."""
    return calibrated_floor(encoder.encode(reference_texts()))


def similarity_floor(encoder: Any) -> float:
    """The least cosine for two texts to count as alike when ``encoder``'s batch is read together: its own
    ``similarity_floor()`` (:class:`fewshot.encoders.encoder.Encoder`: :data:`BATCH_NEAR` for the encoder the
    reading was tuned on, else :func:`encoder_floor`);
    :data:`BATCH_NEAR` for an encoder object without one."""
    own = getattr(encoder, "similarity_floor", None)
    return float(own()) if callable(own) else BATCH_NEAR


def reads_together(n_texts: int, k: int = BATCH_NEIGHBOURS) -> bool:
    """Whether a batch of ``n_texts`` texts is large enough for :func:`batch_scores` to read it together (at
    least :data:`BATCH_MIN_TEXTS`, and more than ``k``); what the front ends tell the user when it is not."""
    return n_texts >= max(BATCH_MIN_TEXTS, k + 1)


def batch_neighbours(vectors: np.ndarray, k: int, *, same: float = BATCH_SAME, least: float = BATCH_NEAR
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` most similar other rows of ``vectors`` (unit length) with a cosine of at least ``least``,
    leaving out its copies (cosine ``same`` or more: a text repeated, or a template with another number, is one
    text, not a group): ``(similarities, rows)``, both ``(n, k)``, most similar first; where fewer are found
    among the ``4 k`` nearest, padded with NaN and -1. Searched as the examples are (:class:`SupportIndex`: exact
    inner products through FAISS, approximate above :data:`fewshot.support.APPROX_ABOVE` texts; no n x n matrix)."""
    from .support import SupportIndex

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = SupportIndex(vectors.shape[1])
    index.add(np.arange(len(vectors), dtype=np.int64), vectors)
    sims, rows = index.search(vectors, min(len(vectors), 4 * k + 1))
    other = (rows != np.arange(len(vectors))[:, None]) & (rows >= 0) & (sims < same) & (sims >= least)
    keep = np.argsort(~other, axis=1, kind="stable")[:, :k]  # the other rows first, in their order
    found = np.take_along_axis(other, keep, axis=1)
    return (np.where(found, np.take_along_axis(sims, keep, axis=1), np.nan),
            np.where(found, np.take_along_axis(rows, keep, axis=1), -1))


def example_reach(vectors: np.ndarray, examples: np.ndarray, *, k: int = BATCH_NEIGHBOURS,
                  alpha: float = BATCH_REACH, steps: int = 40, near: float = BATCH_NEAR) -> np.ndarray:
    """How much of each text's mass comes from the examples when both are read as one graph: the log share of
    the examples' propagated mass (1 per example) in what reaches the text, against the batch's own
    (:data:`BATCH_PRIOR` per text). Label propagation (Zhou et al. 2004, "Learning with local and global
    consistency") on the ``k``-nearest-neighbour graph of examples and texts (:func:`batch_neighbours`: cosines
    of at least ``near``, weighted by how far above it they are). Why: a recurring unknown intent
    forms a group of texts the examples reach only through a few weak links, even where each of its texts,
    alone, sits near some example; a text linked to nothing keeps the lowest share."""
    import scipy.sparse as sparse  # loaded only when a batch is read with its examples

    nodes = np.vstack([np.asarray(examples, dtype=np.float32), np.asarray(vectors, dtype=np.float32)])
    sims, rows = batch_neighbours(nodes, k, least=near)
    found = rows >= 0
    weights = sparse.csr_matrix((np.maximum(sims[found] - near, 1e-6),
                                 (np.nonzero(found)[0], rows[found])), shape=(len(nodes), len(nodes)))
    weights = weights.maximum(weights.T)  # a neighbour either way links the two
    degree = np.asarray(weights.sum(axis=1)).ravel()
    scale = sparse.diags(1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)))
    graph = scale @ weights @ scale
    seeds = np.zeros((len(nodes), 2))
    seeds[:len(examples), 0] = 1.0
    seeds[len(examples):, 1] = BATCH_PRIOR
    mass = seeds.copy()
    for _ in range(steps):
        mass = alpha * (graph @ mass) + (1.0 - alpha) * seeds
    mass = mass[len(examples):]
    return np.log(mass[:, 0] / (mass.sum(axis=1) + 1e-12) + 1e-9)


def _standardised(values: np.ndarray) -> np.ndarray:
    """``values`` less their mean, over their spread."""
    return (values - values.mean()) / max(float(values.std()), 1e-12)


def reordered(read: np.ndarray, vectors: np.ndarray, examples: np.ndarray, *, k: int = BATCH_NEIGHBOURS,
              reach: float = BATCH_REACH, lowered: bool = True, near: float = BATCH_NEAR) -> np.ndarray:
    """The finite values of ``read`` handed out again in the order of ``read`` plus the examples' reach
    (:func:`example_reach`), both standardised: the scores' own units, a better order; ``-inf`` stays.
    ``lowered`` (what :func:`batch_scores` returns): the values handed out are each text's lower of its
    ``read`` and its reordered value, so that as many texts fall below any threshold as if each kept the
    lower of the two, while the order stays that of the reading plus the reach."""
    finite = np.isfinite(read)
    reach_of = example_reach(vectors, examples, k=k, alpha=reach, near=near)
    order = _standardised(read[finite]) + _standardised(reach_of[finite])
    rank = np.argsort(np.argsort(order, kind="stable"), kind="stable")
    values = np.sort(read[finite])[rank]
    if lowered:
        values = np.sort(np.minimum(read[finite], values))[rank]
    out = read.copy()
    out[finite] = values
    return out


def batch_scores(scores: np.ndarray, vectors: np.ndarray, nearest_example: np.ndarray, *,
                 k: int = BATCH_NEIGHBOURS, smooth: float = BATCH_WEIGHT, novelty: float = BATCH_WEIGHT,
                 rise: float = BATCH_RISE, scaled: bool = True, examples: np.ndarray | None = None,
                 reach: float = BATCH_REACH, near: float = BATCH_NEAR) -> np.ndarray:
    """In-scope ``scores`` of a batch read together, in the scores' own units (thresholds apply unchanged).

    Why: an unknown intent of the labels' own domain reads like a known label one text at a time, but in a
    batch it repeats and its texts sit together. Each score, standardised over the batch, first loses
    ``novelty`` times the standardised novelty: the mean similarity of the text's ``k`` neighbours in the batch
    (:func:`batch_neighbours`) minus that of its nearest example, ``nearest_example`` (a text much closer to
    other texts than to any example is likely a new intent). Then ``smooth`` of it is replaced by its
    neighbours' mean (label propagation's local consistency: Zhou et al. 2004, "Learning with local and global
    consistency"), less where the neighbours are less similar to it than the batch's median text's are to its
    own, none at ``near`` (the least cosine of a neighbour, :data:`BATCH_NEAR` or the encoder's own:
    :func:`similarity_floor`; a text like nothing in particular, often another domain's, is not pulled
    towards the in-scope texts it barely resembles; ``scaled=False``: ``smooth`` for every text with a
    neighbour). A text keeps the lower of its own score and that reading, plus ``rise`` of any rise (0: the
    reading only lowers scores; 1: the reading itself; docs/research/unknown-in-domain.md). A text without neighbours
    keeps its score; ``-inf`` ("none of these" won) stays ``-inf`` and counts as the lowest score for its
    neighbours. ``examples`` (the examples' vectors, as the classifier passes them): then the values are
    handed out again in the order of that reading plus the examples' reach, its ``alpha`` ``reach``
    (:func:`reordered`: the threshold keeps its meaning, and as many texts fall below it as if each kept the
    lower of that reading and its reordered value). A batch of fewer than :data:`BATCH_MIN_TEXTS` texts is
    returned unchanged.
    """
    scores = np.asarray(scores, dtype=np.float64)
    for name, value in (("smooth", smooth), ("novelty", novelty), ("rise", rise)):
        if not 0.0 <= value <= 1.0:
            raise FewShotError(f"{name} must lie between 0 and 1, got {value!r}")
    if not 0.0 <= reach < 1.0:
        raise FewShotError(f"reach must lie from 0 up to (not including) 1, got {reach!r}")
    if not -1.0 <= near < BATCH_SAME:
        raise FewShotError(f"near must lie from -1 up to (not including) {BATCH_SAME}, got {near!r}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise FewShotError(f"k must be a positive whole number, got {k!r}")
    if not (len(scores) == len(vectors) == len(nearest_example)):
        raise FewShotError(f"one vector and one nearest-example similarity per score: {len(scores)} scores, "
                           f"{len(vectors)} vectors, {len(nearest_example)} similarities")
    if examples is not None and (np.ndim(examples) != 2 or np.shape(examples)[1:] != np.shape(vectors)[1:]):
        raise FewShotError(f"examples must be vectors as wide as the texts' {np.shape(vectors)[1:]}, got shape "
                           f"{np.shape(examples)}")
    finite = np.isfinite(scores)
    if not reads_together(len(scores), k) or finite.sum() < 2:
        return scores.copy()
    mean, spread = scores[finite].mean(), max(float(scores[finite].std()), 1e-12)
    z = (np.where(finite, scores, scores[finite].min()) - mean) / spread
    sims, rows = batch_neighbours(vectors, k, least=near)
    found = rows >= 0
    count = np.maximum(found.sum(axis=1), 1)
    alone = ~found.any(axis=1)  # nothing similar in the batch but copies of itself: read on its own
    closeness = np.where(found, sims, 0.0).sum(axis=1) / count  # mean cosine of its neighbours
    apart = closeness - np.asarray(nearest_example, dtype=np.float64)  # the novelty: nearer the batch than examples
    apart = np.where(alone, apart[~alone].mean() if (~alone).any() else 0.0, apart)
    z = z - novelty * _standardised(apart)
    mean_neighbour = np.where(alone, z, np.where(found, z[np.maximum(rows, 0)], 0.0).sum(axis=1) / count)
    typical = float(np.median(closeness[~alone])) if (~alone).any() else 1.0
    weight = smooth * np.clip((closeness - near) / max(typical - near, 1e-6), 0.0, 1.0)
    weight = np.where(alone, 0.0, weight if scaled else smooth)  # full for neighbours as close as the median text's
    z = (1.0 - weight) * z + weight * mean_neighbour
    read = np.where(finite, mean + spread * z, scores)  # back in the scores' units; -inf stays -inf
    gain = np.maximum(read - np.where(finite, scores, 0.0), 0.0)  # 0 where the score is -inf
    read = np.minimum(scores, read) + rise * gain
    if examples is None or not len(examples):
        return read
    return reordered(read, vectors, examples, k=k, reach=reach, near=near)


def rejected(probs: np.ndarray, scores: np.ndarray | None, *, min_confidence: float | None,
             score_threshold: float | None) -> np.ndarray:
    """Which rows are answered unknown: "none of these" won (score ``-inf``), top probability below
    ``min_confidence``, or in-scope score below ``score_threshold`` (None: that test is off)."""
    none_wins = np.isneginf(scores) if scores is not None else np.zeros(len(probs), dtype=bool)
    reject = none_wins
    if min_confidence is not None:
        reject = reject | (probs.max(axis=1) < min_confidence)
    if score_threshold is not None:
        if scores is None:
            raise FewShotError("a score threshold (auto_unknown / score_threshold) needs in-scope scores; "
                               "use predict_with_scores()")
        reject = reject | (scores < score_threshold)
    return reject


def ambiguous(probs: np.ndarray, margin: float | None, unknown: np.ndarray | None = None) -> np.ndarray:
    """Which rows are "ambiguous: A or B?": the top two probabilities differ by less than ``margin`` (None:
    never), and the row is not answered unknown (unknown takes precedence).

    The top-2 margin is the ambiguity test of Rasa's ``ambiguity_threshold`` (default 0.1 there too); where it
    fires, the pair holds the right label far more often than the top label alone (docs/research/unknown-in-domain.md).
    """
    flagged = np.zeros(len(probs), dtype=bool)
    if margin is None or not len(probs) or probs.shape[1] < 2:
        return flagged
    top2 = -np.partition(-probs, 1, axis=1)[:, :2]
    flagged = (top2[:, 0] - top2[:, 1]) < margin
    return flagged & ~unknown if unknown is not None else flagged


def operating_curve(scores: np.ndarray, right: np.ndarray, is_oos: np.ndarray | None = None, *,
                    thresholds: np.ndarray | list[float] | tuple[float, ...] = ()) -> Any:
    """What each in-scope-score threshold would do on labelled texts, for choosing an operating point.

    ``scores``: in-scope scores of the texts (``-inf``: "none of these" won, always unknown); ``right``:
    whether the top label is the gold label (False for out-of-scope rows); ``is_oos``: whether the gold label
    is the unknown label (None: no such rows). A text is answered unknown when its score is below the
    threshold (as :func:`rejected`). One row per candidate threshold (every distinct finite score, one just
    above the highest, which rejects everything, and any extra ``thresholds``), ascending, with:

    - ``coverage``: share of all texts answered with a label (falls as the threshold rises);
    - ``accuracy_kept``: in-scope accuracy with the rejection applied (an in-scope text answered unknown
      counts wrong), the number the automatic threshold's ``auto_max_drop`` budgets;
    - ``answered_accuracy``: accuracy among the in-scope texts answered with a label (NaN when none);
    - ``oos_recall``: share of the out-of-scope texts answered unknown (NaN without any);
    - ``accuracy``: accuracy over all texts with the unknown rule applied (an out-of-scope text answered
      unknown counts right).

    Returns a pandas DataFrame with the columns ``threshold`` and the five above.
    """
    import pandas as pd

    scores = np.asarray(scores, dtype=np.float64)
    right = np.asarray(right, dtype=bool)
    oos = np.zeros(len(scores), dtype=bool) if is_oos is None else np.asarray(is_oos, dtype=bool)
    if not (len(scores) == len(right) == len(oos)):
        raise FewShotError(f"scores, right and is_oos must have the same length, got {len(scores)}, "
                           f"{len(right)} and {len(oos)}")
    if not len(scores):
        raise FewShotError("operating_curve needs at least one scored text")
    finite = np.unique(scores[np.isfinite(scores)])
    top = np.nextafter(finite[-1], np.inf) if len(finite) else 0.0
    extra = np.asarray([t for t in thresholds if t is not None and np.isfinite(t)], dtype=np.float64)
    cut = np.unique(np.concatenate([finite, [top], extra]))
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    below = np.searchsorted(ranked, cut, side="left")  # rows with score < threshold: answered unknown
    n, n_oos = len(scores), int(oos.sum())
    n_in = n - n_oos
    kept_right = np.concatenate([[0], np.cumsum((right & ~oos)[order])])
    oos_rejected = np.concatenate([[0], np.cumsum(oos[order])])[below]
    in_answered = (n_in - (below - oos_rejected))
    right_kept = kept_right[-1] - kept_right[below]
    with np.errstate(invalid="ignore", divide="ignore"):
        answered_acc = np.where(in_answered > 0, right_kept / np.maximum(in_answered, 1), np.nan)
    return pd.DataFrame({
        "threshold": cut,
        "coverage": (n - below) / n,
        "accuracy_kept": right_kept / n_in if n_in else np.full(len(cut), np.nan),
        "answered_accuracy": answered_acc,
        "oos_recall": oos_rejected / n_oos if n_oos else np.full(len(cut), np.nan),
        "accuracy": (right_kept + oos_rejected) / n,
    })
