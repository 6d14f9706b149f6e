"""Episode and pair samplers for meta-training, from any labelled data (seeded, never all pairs at once).

An *episode* (Vinyals et al. 2016) is a small N-way K-shot task: N labels, K support and Q query
examples per label, drawn from a larger labelled set so that training looks like test-time use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import FewShotError


@dataclass(frozen=True)
class Episode:
    """Row indices into the source data; ``*_y`` are episode-local label ids 0..n_way-1."""

    support: np.ndarray  # (n_way * k_shot,)
    support_y: np.ndarray
    query: np.ndarray  # (n_way * q_query,)
    query_y: np.ndarray
    classes: np.ndarray  # the source labels, in episode-local order


class EpisodeSampler:
    """Draws N-way K-shot Q-query episodes from ``labels`` (one per row of the source data).

    >>> s = EpisodeSampler(["a"] * 4 + ["b"] * 4, n_way=2, k_shot=1, q_query=2, seed=0)
    >>> ep = s.sample(); ep.support.shape, ep.query.shape
    ((2,), (4,))
    """

    def __init__(self, labels: Sequence[str] | np.ndarray, *, n_way: int, k_shot: int, q_query: int,
                 seed: int = 0) -> None:
        labels = np.asarray(labels)
        self.classes, inverse = np.unique(labels, return_inverse=True)
        self.by_class = [np.flatnonzero(inverse == c) for c in range(len(self.classes))]
        need = k_shot + q_query
        self.eligible = np.array([c for c, rows in enumerate(self.by_class) if len(rows) >= need])
        if k_shot < 1 or q_query < 1 or n_way < 2:
            raise FewShotError(f"need n_way >= 2, k_shot >= 1, q_query >= 1; got {n_way}, {k_shot}, {q_query}")
        if len(self.eligible) < n_way:
            raise FewShotError(f"{n_way}-way episodes need {n_way} labels with >= {need} rows each; "
                               f"only {len(self.eligible)} of {len(self.classes)} labels have that many")
        self.n_way, self.k_shot, self.q_query = n_way, k_shot, q_query
        self.rng = np.random.default_rng(seed)

    def sample(self) -> Episode:
        chosen = self.rng.choice(self.eligible, size=self.n_way, replace=False)
        sup, qry = [], []
        for rows in (self.by_class[c] for c in chosen):
            picked = self.rng.choice(rows, size=self.k_shot + self.q_query, replace=False)
            sup.append(picked[: self.k_shot])
            qry.append(picked[self.k_shot:])
        ways = np.arange(self.n_way)
        return Episode(np.concatenate(sup), np.repeat(ways, self.k_shot), np.concatenate(qry),
                       np.repeat(ways, self.q_query), self.classes[chosen])

    def __iter__(self) -> Iterator[Episode]:
        while True:
            yield self.sample()


def sample_balanced_pairs(labels: Sequence[str] | np.ndarray, n_pairs: int, *, seed: int = 0,
                          embeddings: np.ndarray | None = None, hard_fraction: float = 0.5
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced pairs ``(i, j, y)`` over a whole labelled data set, with ``y = 1`` for a *dissimilar* pair
    (Hadsell et al. 2006's convention), for :class:`fewshot.losses.ContrastiveLoss`.

    Half the pairs share a label, half do not. With ``embeddings``, ``hard_fraction`` of the negatives
    are hard: the most similar other-label row among a random candidate pool (never all pairs). The pairs
    mined inside one batch of embeddings are :mod:`fewshot.losses.pairs`.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    by_class = [np.flatnonzero(inverse == c) for c in range(len(classes))]
    multi = np.array([c for c, rows in enumerate(by_class) if len(rows) >= 2])
    if len(classes) < 2 or len(multi) == 0:
        raise FewShotError("pairs need at least 2 labels and one label with 2 or more rows")
    n_pos = n_pairs // 2
    n_neg = n_pairs - n_pos
    pos = np.empty((n_pos, 2), dtype=np.int64)
    for p, c in enumerate(rng.choice(multi, size=n_pos)):
        pos[p] = rng.choice(by_class[c], size=2, replace=False)
    anchors = rng.integers(0, len(labels), size=n_neg)
    neg = np.empty((n_neg, 2), dtype=np.int64)
    n_hard = int(round(hard_fraction * n_neg)) if embeddings is not None else 0
    for p, a in enumerate(anchors):
        pool = rng.integers(0, len(labels), size=64)
        pool = pool[inverse[pool] != inverse[a]]
        while len(pool) == 0:
            pool = rng.integers(0, len(labels), size=64)
            pool = pool[inverse[pool] != inverse[a]]
        if p < n_hard:
            j = pool[np.argmax(embeddings[pool] @ embeddings[a])]
        else:
            j = pool[0]
        neg[p] = (a, j)
    i = np.concatenate([pos[:, 0], neg[:, 0]])
    j = np.concatenate([pos[:, 1], neg[:, 1]])
    y = np.concatenate([np.zeros(n_pos), np.ones(n_neg)]).astype(np.float32)
    order = rng.permutation(n_pairs)
    return i[order], j[order], y[order]
