"""Centring an episode on its support mean, the classifier's ``center`` step, for the losses that train in
the classifier's geometry (:class:`~fewshot.losses.prototypical.PrototypicalLoss`,
:class:`~fewshot.losses.matching.MatchingLoss`, the MAML step of :mod:`fewshot.meta.trainer`)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def center_episode(support: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
    """Centre support and query on the support mean and renormalise (the classifier's ``center`` step)."""
    mean = support.mean(dim=0, keepdim=True)
    return F.normalize(support - mean, dim=-1), F.normalize(query - mean, dim=-1)
