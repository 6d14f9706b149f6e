"""Pair mining inside a batch for :class:`~fewshot.losses.contrastive.ContrastiveLoss`: which rows of a batch
of embeddings form the similar (``y = 0``) and dissimilar (``y = 1``) pairs.

Both miners take each row's hardest negative, its most similar other-label row (:func:`hardest_negatives`;
the batch-hard mining of Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss for Person
Re-Identification", which sentence-transformers' ``BatchHardTripletLoss`` follows), so the pairs grow linearly
with the batch. Pairs over a whole labelled data set (balanced, from a candidate pool) are
:func:`fewshot.meta.episodes.sample_balanced_pairs`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def hardest_negatives(z: Tensor, labels: Tensor) -> Tensor:
    """For each row of ``z`` (unit rows, ``(n, d)``), the index of its most similar row with another label
    (no gradient). A row whose label is the batch's only one gets a same-label index: callers skip it."""
    z = z.detach()
    sims = (z @ z.T).masked_fill(labels[:, None] == labels[None, :], -2.0)
    return sims.argmax(dim=1)


def random_positive_and_hardest_negative(z: Tensor, labels: Tensor, generator: torch.Generator
                                         ) -> tuple[Tensor, Tensor, Tensor]:
    """``(i, j, dissimilar)`` index pairs of an episode: for each row, one random same-label partner (drawn
    with ``generator``) and its hardest other-label partner; rows without such a partner get none, so at most
    ``2 n`` pairs. ``dissimilar`` is float, 1 for a dissimilar pair."""
    n = labels.shape[0]
    same = (labels[:, None] == labels[None, :]) & ~torch.eye(n, dtype=torch.bool)
    other = labels[:, None] != labels[None, :]
    noise = torch.rand((n, n), generator=generator)
    firsts, seconds, flags = [], [], []
    has_pos = same.any(dim=1)
    if has_pos.any():
        pos = torch.where(same, noise, torch.full_like(noise, -1.0)).argmax(dim=1)
        idx = torch.nonzero(has_pos).squeeze(1)
        firsts.append(idx), seconds.append(pos[idx]), flags.append(torch.zeros(len(idx)))
    has_neg = other.any(dim=1)
    if has_neg.any():
        neg = hardest_negatives(z, labels)
        idx = torch.nonzero(has_neg).squeeze(1)
        firsts.append(idx), seconds.append(neg[idx]), flags.append(torch.ones(len(idx)))
    return torch.cat(firsts), torch.cat(seconds), torch.cat(flags)


def all_positives_and_hardest_negatives(z: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(i, j, y)`` pairs of a batch: every same-label pair (``y = 0``) and, per row, its hardest other-label
    row (``y = 1``); ``y`` is long. The batch needs two labels or more."""
    same = labels[:, None] == labels[None, :]
    i_pos, j_pos = torch.nonzero(torch.triu(same, diagonal=1), as_tuple=True)
    i = torch.cat([i_pos, torch.arange(len(z))])
    j = torch.cat([j_pos, hardest_negatives(z, labels)])
    y = torch.cat([torch.zeros(len(i_pos), dtype=torch.long), torch.ones(len(z), dtype=torch.long)])
    return i, j, y
