"""Distillation of sentence embeddings from a teacher (Hinton, Vinyals & Dean 2015; for sentence embeddings
Reimers & Gurevych 2020, "Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation",
EMNLP), through a learned projection into the teacher's space."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def distill_cosine(projection: nn.Module, z: Tensor, teacher: Tensor) -> Tensor:
    """Mean ``1 - cos`` between the projected student vectors ``projection(z)`` and the teacher's unit vectors.

    sentence-transformers' ``MSELoss`` (Reimers & Gurevych 2020) regresses the teacher's vector itself; here
    the student keeps its own width and only the direction of its projection is matched. No labels. Example::

        projection = torch.nn.Linear(384, 768)       # student width -> teacher width
        loss = distill_cosine(projection, F.normalize(student(batch), dim=-1), teacher_vectors)
    """
    return (1.0 - (F.normalize(projection(z), dim=-1) * teacher).sum(-1)).mean()
