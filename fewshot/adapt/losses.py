"""Losses for adapting the encoder to a label set, and the episode sampler that feeds them.

- :func:`supcon_loss`: supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning"),
  every same-label pair in an episode a positive, every other example in the denominator.
- :func:`contrastive_loss` on pairs from :func:`sample_pairs`: the Siamese contrastive loss (Hadsell, Chopra &
  LeCun 2006, "Dimensionality Reduction by Learning an Invariant Mapping"),
  ``L = (1 - y) D^2 + y max(0, m - D)^2`` with ``y = 1`` for a dissimilar pair and ``D`` the Euclidean distance.
  SetFit (Tunstall et al. 2022) trains on pairs too, but on all its ``2 x iterations x n`` pairs through the whole
  encoder; here each example gets one positive and one (hardest in-episode) negative partner per step, so the
  pairs per step grow linearly with the episode, never quadratically with the support set.
"""

from __future__ import annotations

import numpy as np
import torch


def sample_episode(labels: np.ndarray, rows: np.ndarray, n_labels: int, n_shots: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Rows of one episode: up to ``n_labels`` labels (among those of ``rows`` with >= 2 examples, when any),
    up to ``n_shots`` examples each, drawn without replacement."""
    present, counts = np.unique(labels[rows], return_counts=True)
    pool = present[counts >= 2] if (counts >= 2).sum() >= 2 else present
    chosen = rng.choice(pool, size=min(n_labels, len(pool)), replace=False)
    out = []
    for lab in chosen:
        mine = rows[labels[rows] == lab]
        out.append(rng.choice(mine, size=min(n_shots, len(mine)), replace=False))
    return np.concatenate(out)


def supcon_loss(z: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss of unit vectors ``z`` (n, d) with labels ``y`` (Khosla et al. 2020, L_out)."""
    n = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (y[:, None] == y[None, :]) & ~self_mask
    n_pos = positive.sum(dim=1)
    has = n_pos > 0
    if not has.any():
        return z.sum() * 0.0
    mean_log_prob = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1) / n_pos.clamp(min=1)
    return -mean_log_prob[has].mean()


def sample_pairs(y: torch.Tensor, z: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor,
                                                                                        torch.Tensor]:
    """``(i, j, dissimilar)`` index pairs: for each example, one random same-label partner and its hardest
    (most similar) other-label partner in the episode: at most ``2 n`` pairs."""
    n = y.shape[0]
    same = (y[:, None] == y[None, :]) & ~torch.eye(n, dtype=torch.bool)
    other = y[:, None] != y[None, :]
    noise = torch.rand((n, n), generator=generator)
    firsts, seconds, flags = [], [], []
    has_pos = same.any(dim=1)
    if has_pos.any():
        pos = torch.where(same, noise, torch.full_like(noise, -1.0)).argmax(dim=1)
        idx = torch.nonzero(has_pos).squeeze(1)
        firsts.append(idx), seconds.append(pos[idx]), flags.append(torch.zeros(len(idx)))
    has_neg = other.any(dim=1)
    if has_neg.any():
        with torch.no_grad():
            sims = torch.where(other, z @ z.T, torch.full((n, n), -2.0))
        neg = sims.argmax(dim=1)
        idx = torch.nonzero(has_neg).squeeze(1)
        firsts.append(idx), seconds.append(neg[idx]), flags.append(torch.ones(len(idx)))
    return torch.cat(firsts), torch.cat(seconds), torch.cat(flags)


def contrastive_loss(z: torch.Tensor, y: torch.Tensor, margin: float, generator: torch.Generator) -> torch.Tensor:
    """Mean Hadsell et al. (2006) contrastive loss over the pairs of :func:`sample_pairs`."""
    i, j, dissimilar = sample_pairs(y, z, generator)
    if len(i) == 0:
        return z.sum() * 0.0
    d = (z[i] - z[j]).pow(2).sum(dim=1).clamp(min=1e-12).sqrt()
    loss = (1 - dissimilar) * d.pow(2) + dissimilar * torch.clamp(margin - d, min=0).pow(2)
    return loss.mean()
