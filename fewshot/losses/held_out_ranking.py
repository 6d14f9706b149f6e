"""Held-out-label episodes for unknown intents inside the domain (open-set episodes, Liu et al. 2020), with a
smooth AUROC surrogate (Yan et al. 2003) as the loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import FewShotError
from .checks import check_temperature
from .prototypical import PrototypicalLoss


class HeldOutLabelRankingLoss(nn.Module):
    """Held-out-label episodes for "none of these" inside the domain: some of the episode's labels are hidden
    from the support set and their texts play the unknown intents (the open-set episodes of Liu et al. 2020,
    "Few-Shot Open-Set Recognition using Meta-Learning", CVPR); the loss ranks every known query's in-scope
    score above every hidden text's, a smooth surrogate of the AUROC (the Wilcoxon-Mann-Whitney statistic;
    Yan et al. 2003, "Optimizing Classifier Performance via an Approximation to the Wilcoxon-Mann-Whitney
    Statistic", ICML).

    In-scope score: the highest cosine to a known label's unit-length mean support embedding, what the
    classifier's unknown rule reads in spirit (its head's top logit starts from these prototypes).
    ``L = mean over (known query i, hidden text j) of softplus((s_j - s_i) / temperature)``.

    :param temperature: scale of the score differences (cosines).

    Inputs: ``support`` / ``support_y`` (known labels only, episode-local ids ``0..n_way-1``), ``query`` (the
    known labels' queries, no labels needed) and ``hidden`` (texts of the hidden labels), each ``(n, d)``.
    Label convention: the hidden texts carry no label; being in ``hidden`` is what marks them unknown
    (sentence-transformers has no open-set loss).

    Example::

        from fewshot.losses import HeldOutLabelRankingLoss

        loss_fn = HeldOutLabelRankingLoss(temperature=0.05)
        loss = loss_fn(support_emb, support_y, query_emb, hidden_emb, n_way=12)
    """

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature

    def scores(self, support: Tensor, support_y: Tensor, texts: Tensor, n_way: int) -> Tensor:
        """Each text's highest cosine to a known label's prototype (:meth:`PrototypicalLoss.logits`, uncentred,
        at temperature 1)."""
        return PrototypicalLoss(1.0, center=False).logits(support, support_y, texts, n_way).max(dim=1).values

    def forward(self, support: Tensor, support_y: Tensor, query: Tensor, hidden: Tensor, n_way: int) -> Tensor:
        """Mean softplus of every (known query, hidden text) score difference over the temperature."""
        if not len(query) or not len(hidden):
            raise FewShotError(f"held-out-label episodes need known queries and hidden texts, got {len(query)} "
                               f"and {len(hidden)}")
        known = self.scores(support, support_y, query, n_way)
        unknown = self.scores(support, support_y, hidden, n_way)
        return F.softplus((unknown[None, :] - known[:, None]) / self.temperature).mean()

    def get_config_dict(self) -> dict[str, float]:
        """The settings that define the loss (as sentence-transformers' losses report them)."""
        return {"temperature": self.temperature}
