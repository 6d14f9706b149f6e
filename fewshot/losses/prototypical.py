"""The prototypical episode loss (Snell, Swersky & Zemel 2017, "Prototypical Networks for Few-shot Learning",
NeurIPS), cosine variant."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .centering import center_episode
from .checks import check_episode, check_temperature


class PrototypicalLoss(nn.Module):
    """Prototypical episode loss (Snell, Swersky & Zemel 2017, "Prototypical Networks for Few-shot
    Learning", NeurIPS), cosine variant.

    Softmax over the cosine similarity of each query to each label's unit-length mean support embedding,
    divided by ``temperature``; cross-entropy of the queries' labels. With ``center=True`` the embeddings
    are first centred on the support mean and renormalised, which is what
    :func:`fewshot.rules.fit_prototype_head` does before fitting, so training sees the geometry the
    classifier uses.

    :param temperature: softmax temperature on the cosine similarities.
    :param center: centre on the support mean first (default True).

    Inputs and label convention: as :class:`~fewshot.losses.matching.MatchingLoss` (episode-local ids
    ``0..n_way-1``).

    Example::

        from fewshot.losses import PrototypicalLoss

        loss_fn = PrototypicalLoss(temperature=0.05, center=True)
        loss = loss_fn(support_emb, support_y, query_emb, query_y, n_way=5)
    """

    def __init__(self, temperature: float = 0.05, center: bool = True) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature
        self.center = center

    def logits(self, support: Tensor, support_y: Tensor, query: Tensor, n_way: int) -> Tensor:
        """``(n_query, n_way)``: each query's cosine to each label's unit mean support vector / temperature."""
        s, q = F.normalize(support, dim=-1), F.normalize(query, dim=-1)
        if self.center:
            s, q = center_episode(s, q)
        protos = torch.zeros(n_way, s.shape[1], dtype=s.dtype, device=s.device).index_add(0, support_y, s)
        return q @ F.normalize(protos, dim=-1).T / self.temperature

    def forward(self, support: Tensor, support_y: Tensor, query: Tensor, query_y: Tensor, n_way: int) -> Tensor:
        """Mean cross-entropy of the queries' labels under :meth:`logits`."""
        check_episode(support, support_y, query, query_y, n_way)
        return F.cross_entropy(self.logits(support, support_y, query, n_way), query_y)

    def get_config_dict(self) -> dict[str, float | bool]:
        """The settings that define the loss (as sentence-transformers' losses report them)."""
        return {"temperature": self.temperature, "center": self.center}
