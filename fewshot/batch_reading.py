"""A batch's in-scope scores read together (:func:`batch_scores`): each text's score lowered by its novelty against
its neighbours in the batch and smoothed over them, then reordered by the examples' reach through the batch (label
propagation, Zhou et al. 2004), so that a topic no label covers, repeated in a file, is answered unknown more often.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import FewShotError
from .label_sets import LABEL_SETS_DIR

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
