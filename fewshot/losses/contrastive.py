"""The contrastive (Siamese) loss of Hadsell, Chopra & LeCun 2006, "Dimensionality Reduction by Learning an
Invariant Mapping", CVPR, eq. 4: ``L = (1 - y) * D**2 + y * max(0, margin - D)**2``.

One formula (:func:`contrastive_loss`), two ways in: :class:`ContrastiveLoss` on given pairs, and
:func:`episode_contrastive_loss` on the pairs it mines from an episode
(:func:`~fewshot.losses.pairs.random_positive_and_hardest_negative`), what fine-tuning with
``loss="contrastive"`` uses.

Label convention: **``y = 1`` means dissimilar** (the paper's). sentence-transformers' ``ContrastiveLoss``
uses the opposite (``1`` = similar), a cosine distance by default and the paper's factor 1/2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import FewShotError
from .pairs import random_positive_and_hardest_negative


def contrastive_loss(distance: Tensor, y: Tensor, margin: float = 1.0) -> Tensor:
    """Per-pair contrastive loss ``(1 - y) * D**2 + y * max(0, margin - D)**2`` (``y = 1``: dissimilar)."""
    y = y.to(distance.dtype)
    return (1 - y) * distance.pow(2) + y * F.relu(margin - distance).pow(2)


class ContrastiveLoss(nn.Module):
    """Contrastive loss over pairs of embeddings (Hadsell, Chopra & LeCun 2006, "Dimensionality Reduction by
    Learning an Invariant Mapping", CVPR, eq. 4).

    ``L = (1 - y) * D**2 + y * max(0, margin - D)**2`` with ``D`` the Euclidean distance between the two
    embeddings: similar pairs (``y = 0``) are pulled together, dissimilar pairs (``y = 1``) pushed until they
    are ``margin`` apart, after which they cost nothing. On unit vectors ``D`` lies in ``[0, 2]``. The
    paper's factor 1/2 on both terms only rescales the gradient and is left out.

    Label convention: **``y = 1`` means dissimilar** (the paper's, and what
    :func:`fewshot.meta.episodes.sample_balanced_pairs` and :mod:`fewshot.losses.pairs` return);
    sentence-transformers' ``ContrastiveLoss`` uses the opposite (``1`` = similar).

    :param margin: distance beyond which a dissimilar pair no longer contributes.
    :param reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-pair losses).

    Inputs: ``emb1``, ``emb2`` of shape ``(n, d)``; ``y`` of shape ``(n,)``, 0 or 1.

    Example::

        import torch
        from fewshot.losses import ContrastiveLoss

        loss_fn = ContrastiveLoss(margin=1.0)
        a, b = torch.randn(8, 384), torch.randn(8, 384)
        y = torch.tensor([0, 1] * 4)        # 1 = dissimilar pair
        loss = loss_fn(a, b, y)             # scalar; loss.backward() trains whatever made a and b
    """

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        if margin <= 0:
            raise FewShotError(f"margin must be > 0, got {margin!r}")
        if reduction not in ("mean", "sum", "none"):
            raise FewShotError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.margin = margin
        self.reduction = reduction

    def forward(self, emb1: Tensor, emb2: Tensor, y: Tensor) -> Tensor:
        """The loss of the pairs ``(emb1[k], emb2[k])`` with labels ``y[k]`` (1 = dissimilar), reduced."""
        if emb1.shape != emb2.shape or emb1.shape[0] != y.shape[0]:
            raise FewShotError(f"pairs must have matching shapes, got {tuple(emb1.shape)}, "
                               f"{tuple(emb2.shape)} and {tuple(y.shape)} labels")
        distance = (emb1 - emb2).pow(2).sum(-1).clamp_min(1e-12).sqrt()  # clamp: finite gradient at D=0
        losses = contrastive_loss(distance, y, self.margin)
        if self.reduction == "mean":
            return losses.mean()
        if self.reduction == "sum":
            return losses.sum()
        return losses

    def get_config_dict(self) -> dict[str, float | str]:
        """The settings that define the loss (as sentence-transformers' losses report them)."""
        return {"margin": self.margin, "reduction": self.reduction}


def episode_contrastive_loss(z: Tensor, labels: Tensor, margin: float, generator: torch.Generator) -> Tensor:
    """Mean :class:`ContrastiveLoss` of an episode's unit rows ``z`` over the pairs
    :func:`~fewshot.losses.pairs.random_positive_and_hardest_negative` mines with ``generator`` (each row's random
    same-label partner and hardest other-label partner); 0, with a gradient, when there is no pair.

    ``labels``: any class ids, one per row. Example::

        g = torch.Generator().manual_seed(0)
        loss = episode_contrastive_loss(F.normalize(model(batch), dim=-1), labels, margin=1.0, generator=g)
    """
    i, j, dissimilar = random_positive_and_hardest_negative(z, labels, generator)
    if len(i) == 0:
        return z.sum() * 0.0
    return ContrastiveLoss(margin)(z[i], z[j], dissimilar)
