"""Preservation of the frozen encoder's output, against forgetting (after L2-SP, Li, Grandvalet & Davoine 2018,
"Explicit Inductive Bias for Transfer Learning with Convolutional Networks", ICML, which keeps the *weights*
near their start; this keeps the *output* there)."""

from __future__ import annotations

from torch import Tensor


def preservation_loss(z: Tensor, frozen: Tensor) -> Tensor:
    """Mean squared Euclidean distance between each trained vector ``z`` and the frozen encoder's vector of the
    same text. No labels. Example::

        loss = preservation_loss(F.normalize(student(batch), dim=-1), frozen_vectors)
    """
    return (z - frozen).pow(2).sum(-1).mean()
