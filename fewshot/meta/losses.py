"""Meta-training losses on embeddings: contrastive pairs, Matching-Network episodes, prototypical episodes,
held-out-label (open-set) episodes, self-supervised (dropout) contrast and graded sentence pairs.

Each loss is a small ``nn.Module`` over embeddings (not texts), in the manner of sentence-transformers'
``losses/`` package: one class per paper, a docstring with the reference, what the inputs are and an
example. Episode losses take episode-local integer labels ``0..n_way-1`` (what
:class:`fewshot.meta.episodes.EpisodeSampler` produces).

Label conventions differ from sentence-transformers in one place: :class:`ContrastiveLoss` follows the
paper, ``y = 1`` marks a *dissimilar* pair (sentence-transformers' ``ContrastiveLoss`` uses ``1`` for a
similar pair).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import FewShotError


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
    :func:`fewshot.meta.episodes.sample_pairs` returns); sentence-transformers' ``ContrastiveLoss`` uses the
    opposite (``1`` = similar).

    :param margin: distance beyond which a dissimilar pair no longer contributes.
    :param reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-pair losses).

    Inputs: ``emb1``, ``emb2`` of shape ``(n, d)``; ``y`` of shape ``(n,)``, 0 or 1.

    Example::

        import torch
        from fewshot.meta.losses import ContrastiveLoss

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
        return {"margin": self.margin, "reduction": self.reduction}


def _check_episode(support: Tensor, support_y: Tensor, query: Tensor, query_y: Tensor, n_way: int) -> None:
    if support.ndim != 2 or query.ndim != 2 or support.shape[1] != query.shape[1]:
        raise FewShotError(f"support and query must be (n, d) with the same d, got {tuple(support.shape)} "
                           f"and {tuple(query.shape)}")
    if support.shape[0] != support_y.shape[0] or query.shape[0] != query_y.shape[0]:
        raise FewShotError("every support and query row needs one label")
    if n_way < 2 or int(support_y.max()) >= n_way or int(query_y.max()) >= n_way:
        raise FewShotError(f"labels must be episode-local ids 0..n_way-1 with n_way >= 2, got n_way={n_way}")


def center_episode(support: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
    """Centre support and query on the support mean and renormalise (the classifier's ``center`` step)."""
    mean = support.mean(dim=0, keepdim=True)
    return F.normalize(support - mean, dim=-1), F.normalize(query - mean, dim=-1)


class MatchingLoss(nn.Module):
    """Matching-Network episode loss (Vinyals et al. 2016, "Matching Networks for One Shot Learning", NeurIPS).

    A query attends to every support example with a softmax over cosine similarities,
    ``a(q, s_i) = softmax_i(cos(q, s_i) / temperature)``; the attention summed per label is the predicted
    distribution ``P(c | q) = sum_{i: y_i = c} a(q, s_i)``, trained with the queries' cross-entropy.

    :param temperature: softmax temperature on the cosine similarities.
    :param center: centre support and query on the support mean first (the classifier's geometry).

    Inputs: ``support (n_s, d)``, ``support_y (n_s,)``, ``query (n_q, d)``, ``query_y (n_q,)`` with
    episode-local labels, and ``n_way``.

    Example::

        from fewshot.meta.losses import MatchingLoss

        loss_fn = MatchingLoss(temperature=0.05)
        loss = loss_fn(support_emb, support_y, query_emb, query_y, n_way=5)
    """

    def __init__(self, temperature: float = 0.05, center: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise FewShotError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = temperature
        self.center = center

    def forward(self, support: Tensor, support_y: Tensor, query: Tensor, query_y: Tensor, n_way: int) -> Tensor:
        _check_episode(support, support_y, query, query_y, n_way)
        s, q = F.normalize(support, dim=-1), F.normalize(query, dim=-1)
        if self.center:
            s, q = center_episode(s, q)
        attention = (q @ s.T / self.temperature).softmax(dim=-1)  # (n_query, n_support)
        probs = torch.zeros(q.shape[0], n_way, dtype=q.dtype, device=q.device).index_add(1, support_y, attention)
        return F.nll_loss(probs.clamp_min(1e-12).log(), query_y)


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

    Inputs: as :class:`MatchingLoss`.

    Example::

        from fewshot.meta.losses import PrototypicalLoss

        loss_fn = PrototypicalLoss(temperature=0.05, center=True)
        loss = loss_fn(support_emb, support_y, query_emb, query_y, n_way=5)
    """

    def __init__(self, temperature: float = 0.05, center: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise FewShotError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = temperature
        self.center = center

    def logits(self, support: Tensor, support_y: Tensor, query: Tensor, n_way: int) -> Tensor:
        s, q = F.normalize(support, dim=-1), F.normalize(query, dim=-1)
        if self.center:
            s, q = center_episode(s, q)
        protos = torch.zeros(n_way, s.shape[1], dtype=s.dtype, device=s.device).index_add(0, support_y, s)
        return q @ F.normalize(protos, dim=-1).T / self.temperature

    def forward(self, support: Tensor, support_y: Tensor, query: Tensor, query_y: Tensor, n_way: int) -> Tensor:
        _check_episode(support, support_y, query, query_y, n_way)
        return F.cross_entropy(self.logits(support, support_y, query, n_way), query_y)


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

    Inputs: ``support`` / ``support_y`` (known labels only, ``0..n_way-1``), ``query`` (the known labels'
    queries) and ``hidden`` (texts of the hidden labels), each ``(n, d)``.

    Example::

        from fewshot.meta.losses import HeldOutLabelRankingLoss

        loss_fn = HeldOutLabelRankingLoss(temperature=0.05)
        loss = loss_fn(support_emb, support_y, query_emb, hidden_emb, n_way=12)
    """

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        if temperature <= 0:
            raise FewShotError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = temperature

    def scores(self, support: Tensor, support_y: Tensor, texts: Tensor, n_way: int) -> Tensor:
        """Each text's highest cosine to a known label's prototype (:meth:`PrototypicalLoss.logits`, uncentred,
        at temperature 1)."""
        return PrototypicalLoss(1.0, center=False).logits(support, support_y, texts, n_way).max(dim=1).values

    def forward(self, support: Tensor, support_y: Tensor, query: Tensor, hidden: Tensor, n_way: int) -> Tensor:
        if not len(query) or not len(hidden):
            raise FewShotError(f"held-out-label episodes need known queries and hidden texts, got {len(query)} "
                               f"and {len(hidden)}")
        known = self.scores(support, support_y, query, n_way)
        unknown = self.scores(support, support_y, hidden, n_way)
        return F.softplus((unknown[None, :] - known[:, None]) / self.temperature).mean()


class SelfContrastiveLoss(nn.Module):
    """Self-supervised contrast on texts alone (SimCSE, Gao, Yao & Chen 2021, "SimCSE: Simple Contrastive
    Learning of Sentence Embeddings", EMNLP; the unsupervised pre-training stage of CPFT, Zhang et al. 2021,
    "Few-Shot Intent Detection via Contrastive Pre-Training and Fine-Tuning", EMNLP): two encodings of the
    same batch under different dropout masks; each row's other view is its positive, every other row of the
    batch a negative. ``L = cross_entropy(view1 @ view2.T / temperature, arange(n))``. Labels are not used.

    :param temperature: softmax temperature on cosines (SimCSE: 0.05).

    Inputs: ``view1``, ``view2`` of shape ``(n, d)``, unit rows, row ``i`` of both from the same text.

    Example::

        from fewshot.meta.losses import SelfContrastiveLoss

        model.train()                        # dropout on: two passes give two views
        loss = SelfContrastiveLoss(0.05)(model(batch), model(batch))
    """

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        if temperature <= 0:
            raise FewShotError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = temperature

    def forward(self, view1: Tensor, view2: Tensor) -> Tensor:
        if view1.shape != view2.shape or len(view1) < 2:
            raise FewShotError(f"two views of >= 2 rows and the same shape expected, got {tuple(view1.shape)} and "
                               f"{tuple(view2.shape)}")
        logits = view1 @ view2.T / self.temperature
        return F.cross_entropy(logits, torch.arange(len(view1), device=view1.device))


class CosineScoreLoss(nn.Module):
    """Graded sentence pairs (sentence-transformers' ``CosineSimilarityLoss``; Reimers & Gurevych 2019,
    "Sentence-BERT", EMNLP): the squared error between each pair's cosine and its gold similarity in
    ``[0, 1]`` (an STS score of 0-5 divided by 5). Mixed into encoder training on general sentences, it keeps
    what the encoder knew outside the training domain.

    Inputs: ``emb1``, ``emb2`` of shape ``(n, d)``, unit rows; ``score`` of shape ``(n,)`` in ``[0, 1]``.

    Example::

        from fewshot.meta.losses import CosineScoreLoss

        loss = CosineScoreLoss()(u, v, torch.tensor([0.9, 0.1]))
    """

    def forward(self, emb1: Tensor, emb2: Tensor, score: Tensor) -> Tensor:
        if not (len(emb1) == len(emb2) == len(score)):
            raise FewShotError(f"{len(emb1)}, {len(emb2)} and {len(score)} rows; expected one score per pair")
        return (F.cosine_similarity(emb1, emb2, dim=-1) - score.to(emb1.dtype)).pow(2).mean()
