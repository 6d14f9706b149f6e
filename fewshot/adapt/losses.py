"""Former home of fine-tuning's losses, kept for the imports that still name it: the losses are in
:mod:`fewshot.losses` (:func:`~fewshot.losses.supcon.supcon_loss`,
:func:`~fewshot.losses.contrastive.episode_contrastive_loss`), the episode sampler in :mod:`fewshot.adapt.episodes`.
"""

from __future__ import annotations

import torch

from ..losses.pairs import random_positive_and_hardest_negative
from ..losses.supcon import supcon_loss

__all__ = ["sample_pairs", "supcon_loss"]


def sample_pairs(y: torch.Tensor, z: torch.Tensor, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`fewshot.losses.pairs.random_positive_and_hardest_negative` under its former name and argument order."""
    return random_positive_and_hardest_negative(z, y, generator)
