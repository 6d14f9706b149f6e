"""The training losses, one module per loss, in the manner of sentence-transformers' ``losses/`` package: each
on embeddings (not texts), with its paper, its inputs, its label convention and an example.

Episode losses (``fewshot train``'s head methods and the ``--encoder`` episodes), on episode-local labels
``0..n_way-1``:

- :mod:`~fewshot.losses.prototypical`: :class:`PrototypicalLoss` (Snell et al. 2017);
- :mod:`~fewshot.losses.matching`: :class:`MatchingLoss` (Vinyals et al. 2016);
- :mod:`~fewshot.losses.held_out_ranking`: :class:`HeldOutLabelRankingLoss` (open-set episodes, Liu et al. 2020).

Pair and batch losses:

- :mod:`~fewshot.losses.contrastive`: :class:`ContrastiveLoss` and :func:`episode_contrastive_loss` (Hadsell et
  al. 2006); **``y = 1`` marks a dissimilar pair**, the paper's convention and the opposite of
  sentence-transformers' ``ContrastiveLoss``;
- :mod:`~fewshot.losses.supcon`: :func:`supcon_loss` (Khosla et al. 2020), what fine-tuning uses by default;
- :mod:`~fewshot.losses.self_contrastive`: :class:`SelfContrastiveLoss` (SimCSE, Gao et al. 2021);
- :mod:`~fewshot.losses.cosine_score`: :class:`CosineScoreLoss` (sentence-transformers' ``CosineSimilarityLoss``).

Terms of encoder training (``fewshot train --encoder``, :mod:`fewshot.meta.distill`):

- :mod:`~fewshot.losses.distillation`: :func:`distill_cosine` (Reimers & Gurevych 2020);
- :mod:`~fewshot.losses.relational`: :func:`similarity_kl` (relational distillation, Park et al. 2019);
- :mod:`~fewshot.losses.preservation`: :func:`preservation_loss` (after L2-SP, Li et al. 2018).

What they share: :mod:`~fewshot.losses.pairs` (pair mining in a batch, :func:`hardest_negatives`),
:mod:`~fewshot.losses.centering` (:func:`center_episode`, the classifier's centring) and
:mod:`~fewshot.losses.checks`. Never imported by ``import fewshot`` or by the classifier's plain use.
"""

from __future__ import annotations

from .centering import center_episode
from .contrastive import ContrastiveLoss, contrastive_loss, episode_contrastive_loss
from .cosine_score import CosineScoreLoss
from .distillation import distill_cosine
from .held_out_ranking import HeldOutLabelRankingLoss
from .matching import MatchingLoss
from .pairs import all_positives_and_hardest_negatives, hardest_negatives, random_positive_and_hardest_negative
from .preservation import preservation_loss
from .prototypical import PrototypicalLoss
from .relational import similarity_kl
from .self_contrastive import SelfContrastiveLoss
from .supcon import supcon_loss

__all__ = ["ContrastiveLoss", "CosineScoreLoss", "HeldOutLabelRankingLoss", "MatchingLoss", "PrototypicalLoss",
           "SelfContrastiveLoss", "all_positives_and_hardest_negatives", "center_episode", "contrastive_loss",
           "distill_cosine", "episode_contrastive_loss", "hardest_negatives", "preservation_loss",
           "random_positive_and_hardest_negative", "similarity_kl", "supcon_loss"]
