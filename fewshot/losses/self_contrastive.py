"""Self-supervised contrast of two dropout views of each text (SimCSE, Gao, Yao & Chen 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import FewShotError
from .checks import check_temperature


class SelfContrastiveLoss(nn.Module):
    """Self-supervised contrast on texts alone (SimCSE, Gao, Yao & Chen 2021, "SimCSE: Simple Contrastive
    Learning of Sentence Embeddings", EMNLP; the unsupervised pre-training stage of CPFT, Zhang et al. 2021,
    "Few-Shot Intent Detection via Contrastive Pre-Training and Fine-Tuning", EMNLP): two encodings of the
    same batch under different dropout masks; each row's other view is its positive, every other row of the
    batch a negative. ``L = cross_entropy(view1 @ view2.T / temperature, arange(n))``.

    :param temperature: softmax temperature on cosines (SimCSE: 0.05).

    Inputs: ``view1``, ``view2`` of shape ``(n, d)``, unit rows, row ``i`` of both from the same text.
    Label convention: no labels, the row index pairs the views (as sentence-transformers'
    ``MultipleNegativesRankingLoss`` on (anchor, positive) pairs, at its scale 20 = 1 / 0.05).

    Example::

        from fewshot.losses import SelfContrastiveLoss

        model.train()                        # dropout on: two passes give two views
        loss = SelfContrastiveLoss(0.05)(model(batch), model(batch))
    """

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature

    def forward(self, view1: Tensor, view2: Tensor) -> Tensor:
        """Mean cross-entropy of finding each row's second view among the batch's."""
        if view1.shape != view2.shape or len(view1) < 2:
            raise FewShotError(f"two views of >= 2 rows and the same shape expected, got {tuple(view1.shape)} and "
                               f"{tuple(view2.shape)}")
        logits = view1 @ view2.T / self.temperature
        return F.cross_entropy(logits, torch.arange(len(view1), device=view1.device))

    def get_config_dict(self) -> dict[str, float]:
        """The settings that define the loss (as sentence-transformers' losses report them)."""
        return {"temperature": self.temperature}
