"""Small learned heads applied on top of the sentence embedding (what meta-training may learn).

A head maps a (n, d) embedding batch to (n, d). It is described by a plain JSON-able dict so that a
saved model folder says what it holds, and built by :func:`build_head`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import FewShotError


class ResidualLinearHead(nn.Module):
    """``x + scale * (W x + b)``: starts as the identity so meta-training can only move away from the
    frozen encoder as far as the validation classes reward (the regulariser that transfer needs)."""

    def __init__(self, dim: int, scale: float = 1.0) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.linear(x)


class ResidualMLPHead(nn.Module):
    """``x + scale * MLP(x)`` with a zero-initialised output layer (identity at the start)."""

    def __init__(self, dim: int, hidden: int = 768, scale: float = 1.0) -> None:
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.down(torch.nn.functional.gelu(self.up(x)))


HEAD_TYPES: dict[str, type[nn.Module]] = {
    "residual_linear": ResidualLinearHead,
    "residual_mlp": ResidualMLPHead,
}


def build_head(config: dict[str, Any]) -> nn.Module:
    """Build a head from ``{"type": ..., **kwargs}``; raises :class:`FewShotError` for an unknown type."""
    kind = config.get("type")
    if kind not in HEAD_TYPES:
        raise FewShotError(f"unknown head type {kind!r}; expected one of {sorted(HEAD_TYPES)}")
    kwargs = {k: v for k, v in config.items() if k != "type"}
    return HEAD_TYPES[kind](**kwargs)
