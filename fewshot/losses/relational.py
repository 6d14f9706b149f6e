"""Relational distillation of the in-batch similarity structure (Park, Kim, Lu & Cho 2019, "Relational
Knowledge Distillation", CVPR): the student matches the teacher's distribution over each row's neighbours."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def similarity_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """KL(teacher || student) of each row's softmax over its in-batch cosine similarities (self excluded),
    averaged over the rows.

    ``student`` and ``teacher``: unit rows, one per text of the batch, each in its own space (their widths may
    differ). No labels. Example::

        loss = similarity_kl(F.normalize(student(batch), dim=-1), teacher_vectors, temperature=0.05)
    """
    n = len(student)
    eye = torch.eye(n, dtype=torch.bool)
    ls = (student @ student.T / temperature).masked_fill(eye, -1e4)
    lt = (teacher @ teacher.T / temperature).masked_fill(eye, -1e4)
    log_pt, log_ps = F.log_softmax(lt, dim=1), F.log_softmax(ls, dim=1)
    return (log_pt.exp() * (log_pt - log_ps)).masked_fill(eye, 0.0).sum(dim=1).mean()
