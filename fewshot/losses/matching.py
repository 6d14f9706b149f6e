"""The Matching-Network episode loss (Vinyals et al. 2016, "Matching Networks for One Shot Learning",
NeurIPS)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .centering import center_episode
from .checks import check_episode, check_temperature


class MatchingLoss(nn.Module):
    """Matching-Network episode loss (Vinyals et al. 2016, "Matching Networks for One Shot Learning", NeurIPS).

    A query attends to every support example with a softmax over cosine similarities,
    ``a(q, s_i) = softmax_i(cos(q, s_i) / temperature)``; the attention summed per label is the predicted
    distribution ``P(c | q) = sum_{i: y_i = c} a(q, s_i)``, trained with the queries' cross-entropy.

    :param temperature: softmax temperature on the cosine similarities.
    :param center: centre support and query on the support mean first (the classifier's geometry).

    Inputs: ``support (n_s, d)``, ``support_y (n_s,)``, ``query (n_q, d)``, ``query_y (n_q,)`` and ``n_way``.
    Label convention: episode-local ids ``0..n_way-1`` (what :class:`fewshot.meta.episodes.EpisodeSampler`
    produces); sentence-transformers has no episode loss, its batch losses take any class id per row.

    Example::

        from fewshot.losses import MatchingLoss

        loss_fn = MatchingLoss(temperature=0.05)
        loss = loss_fn(support_emb, support_y, query_emb, query_y, n_way=5)
    """

    def __init__(self, temperature: float = 0.05, center: bool = False) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature
        self.center = center

    def forward(self, support: Tensor, support_y: Tensor, query: Tensor, query_y: Tensor, n_way: int) -> Tensor:
        """Mean cross-entropy of the queries' labels under the attention over the support set."""
        check_episode(support, support_y, query, query_y, n_way)
        s, q = F.normalize(support, dim=-1), F.normalize(query, dim=-1)
        if self.center:
            s, q = center_episode(s, q)
        attention = (q @ s.T / self.temperature).softmax(dim=-1)  # (n_query, n_support)
        probs = torch.zeros(q.shape[0], n_way, dtype=q.dtype, device=q.device).index_add(1, support_y, attention)
        return F.nll_loss(probs.clamp_min(1e-12).log(), query_y)

    def get_config_dict(self) -> dict[str, float | bool]:
        """The settings that define the loss (as sentence-transformers' losses report them)."""
        return {"temperature": self.temperature, "center": self.center}
