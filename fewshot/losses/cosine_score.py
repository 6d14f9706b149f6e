"""Graded sentence pairs: each pair's cosine pulled to its gold score (Reimers & Gurevych 2019,
"Sentence-BERT"; sentence-transformers' ``CosineSimilarityLoss``)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import FewShotError


class CosineScoreLoss(nn.Module):
    """Graded sentence pairs (sentence-transformers' ``CosineSimilarityLoss``; Reimers & Gurevych 2019,
    "Sentence-BERT", EMNLP): the squared error between each pair's cosine and its gold similarity in
    ``[0, 1]`` (an STS score of 0-5 divided by 5). Mixed into encoder training on general sentences, it keeps
    what the encoder knew outside the training domain.

    Inputs: ``emb1``, ``emb2`` of shape ``(n, d)``, unit rows; ``score`` of shape ``(n,)`` in ``[0, 1]``.
    Label convention: the score, higher = more similar, as sentence-transformers' ``CosineSimilarityLoss``.

    Example::

        from fewshot.losses import CosineScoreLoss

        loss = CosineScoreLoss()(u, v, torch.tensor([0.9, 0.1]))
    """

    def forward(self, emb1: Tensor, emb2: Tensor, score: Tensor) -> Tensor:
        """Mean squared error between the pairs' cosines and their scores."""
        if not (len(emb1) == len(emb2) == len(score)):
            raise FewShotError(f"{len(emb1)}, {len(emb2)} and {len(score)} rows; expected one score per pair")
        return (F.cosine_similarity(emb1, emb2, dim=-1) - score.to(emb1.dtype)).pow(2).mean()

    def get_config_dict(self) -> dict[str, float]:
        """The settings that define the loss: none."""
        return {}
