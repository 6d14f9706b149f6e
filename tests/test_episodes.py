"""Episode and pair samplers (fewshot.meta.episodes): seeded, right shapes, no leaks between support and query."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fewshot.meta.episodes import EpisodeSampler, sample_balanced_pairs
from fewshot.errors import FewShotError


def _labels(n_classes: int = 6, per_class: int = 10) -> np.ndarray:
    return np.repeat([f"label_{i}" for i in range(n_classes)], per_class)


def test_episode_shapes_and_local_labels() -> None:
    labels = _labels()
    ep = EpisodeSampler(labels, n_way=4, k_shot=3, q_query=2, seed=0).sample()
    assert ep.support.shape == (12,) and ep.query.shape == (8,)
    assert list(ep.support_y) == list(np.repeat(np.arange(4), 3))
    assert list(ep.query_y) == list(np.repeat(np.arange(4), 2))
    assert len(set(ep.classes)) == 4
    for idx, y in ((ep.support, ep.support_y), (ep.query, ep.query_y)):
        assert all(labels[i] == ep.classes[c] for i, c in zip(idx, y))


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**31 - 1), n_way=st.integers(2, 6), k=st.integers(1, 4), q=st.integers(1, 4))
def test_support_and_query_never_overlap(seed: int, n_way: int, k: int, q: int) -> None:
    ep = EpisodeSampler(_labels(6, 8), n_way=n_way, k_shot=k, q_query=q, seed=seed).sample()
    assert not set(ep.support) & set(ep.query)
    assert len(set(ep.support)) == len(ep.support)


def test_episodes_are_seeded() -> None:
    a = [EpisodeSampler(_labels(), n_way=3, k_shot=2, q_query=2, seed=7).sample() for _ in range(2)]
    b = EpisodeSampler(_labels(), n_way=3, k_shot=2, q_query=2, seed=7)
    first, second = b.sample(), b.sample()
    assert np.array_equal(a[0].support, first.support) and np.array_equal(a[0].query, first.query)
    assert not (np.array_equal(first.support, second.support) and np.array_equal(first.query, second.query))
    c = EpisodeSampler(_labels(), n_way=3, k_shot=2, q_query=2, seed=8).sample()
    assert not np.array_equal(first.support, c.support)


def test_episode_sampler_refuses_impossible_episodes() -> None:
    with pytest.raises(FewShotError):
        EpisodeSampler(_labels(3, 10), n_way=4, k_shot=1, q_query=1)
    with pytest.raises(FewShotError):
        EpisodeSampler(_labels(3, 2), n_way=2, k_shot=2, q_query=1)


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 10_000), n_pairs=st.integers(2, 200))
def test_pairs_balanced_and_correct(seed: int, n_pairs: int) -> None:
    labels = _labels(5, 6)
    i, j, y = sample_balanced_pairs(labels, n_pairs, seed=seed)
    assert len(i) == len(j) == len(y) == n_pairs
    assert abs(int((y == 0).sum()) - int((y == 1).sum())) <= 1
    same = labels[i] == labels[j]
    assert np.all(same[y == 0]) and not np.any(same[y == 1])  # y = 1 means dissimilar
    assert np.all(i[y == 0] != j[y == 0])  # a positive pair is two different rows


def test_pairs_seeded() -> None:
    labels = _labels()
    a, b = sample_balanced_pairs(labels, 50, seed=3), sample_balanced_pairs(labels, 50, seed=3)
    assert all(np.array_equal(x, z) for x, z in zip(a, b))
    c = sample_balanced_pairs(labels, 50, seed=4)
    assert not np.array_equal(a[0], c[0])


def test_hard_negatives_are_other_label_and_harder() -> None:
    rng = np.random.default_rng(0)
    labels = _labels(8, 12)
    emb = rng.normal(size=(len(labels), 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    i, j, y = sample_balanced_pairs(labels, 400, seed=1, embeddings=emb, hard_fraction=1.0)
    neg = y == 1
    assert not np.any(labels[i[neg]] == labels[j[neg]])
    ei, ej, ey = sample_balanced_pairs(labels, 400, seed=1, embeddings=emb, hard_fraction=0.0)
    hard_sim = np.mean(np.sum(emb[i[neg]] * emb[j[neg]], axis=1))
    easy_sim = np.mean(np.sum(emb[ei[ey == 1]] * emb[ej[ey == 1]], axis=1))
    assert hard_sim > easy_sim + 0.1


def test_pairs_refuse_degenerate_data() -> None:
    with pytest.raises(FewShotError):
        sample_balanced_pairs(["a", "a", "a"], 10)
    with pytest.raises(FewShotError):
        sample_balanced_pairs(["a", "b", "c"], 10)
