"""The supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning", NeurIPS, L_out)."""

from __future__ import annotations

import torch
from torch import Tensor


def supcon_loss(z: Tensor, y: Tensor, temperature: float) -> Tensor:
    """Supervised contrastive loss of unit vectors ``z`` (n, d) with labels ``y`` (Khosla et al. 2020, L_out).

    Each row's positives are the other rows of its label, its denominator every other row:
    ``L = mean_i -1/|P(i)| sum_{p in P(i)} log softmax_{a != i}(z_i . z_a / temperature)_p`` over the rows
    that have a positive; 0 (with a gradient) when none has. Label convention: any class id per row, as
    sentence-transformers' batch losses (``BatchAllTripletLoss`` and kin) take.

    Example::

        z = F.normalize(model(batch), dim=-1)
        loss = supcon_loss(z, torch.tensor([0, 0, 1, 1, 2, 2]), temperature=0.1)
    """
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
