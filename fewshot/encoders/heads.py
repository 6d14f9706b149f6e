"""Small learned heads applied on top of the sentence embedding (what meta-training may learn), and the one
reader of a trained model folder's head.

A head maps a (n, d) embedding batch to (n, d). It is described by a plain JSON-able dict so that a
saved model folder says what it holds, and built by :func:`build_head`. A model folder (written by
``fewshot train``) holds :data:`MODEL_CONFIG` and :data:`MODEL_WEIGHTS`; :func:`load_head` reads its head.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import FewShotError
from .registry import MODEL_CONFIG, MODEL_WEIGHTS

__all__ = ["HEAD_TYPES", "MAX_WEIGHT_FILE_BYTES", "MODEL_CONFIG", "MODEL_WEIGHTS", "ResidualLinearHead",
           "ResidualMLPHead", "build_head", "head_from", "load_head", "load_weights", "read_model_config",
           "save_weights", "weight_files"]



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


def read_model_config(folder: str | Path) -> dict[str, Any]:
    """The :data:`MODEL_CONFIG` of a trained model folder; :class:`FewShotError` when it has none."""
    folder = Path(folder)
    if not (folder / MODEL_CONFIG).is_file():
        raise FewShotError(f"{folder} is not a trained model folder: {MODEL_CONFIG} is missing")
    return dict(json.loads((folder / MODEL_CONFIG).read_text()))


MAX_WEIGHT_FILE_BYTES = 9_500_000
"""Largest weights file :func:`save_weights` writes: a Hugging Face Space takes files under 10 MB by plain
``git push`` (larger ones need Git LFS), and the repository deploys unchanged as a Space."""


def weight_files(folder: str | Path) -> list[Path]:
    """The weights files of a trained model folder, in order: ``weights_files`` of its config (plain names
    ``weights*.safetensors`` inside the folder), else :data:`MODEL_WEIGHTS` alone."""
    folder = Path(folder)
    names = read_model_config(folder).get("weights_files") or [MODEL_WEIGHTS]
    bad = [n for n in names if not isinstance(n, str) or Path(n).name != n or not n.startswith("weights")
           or not n.endswith(".safetensors")]
    if bad:
        raise FewShotError(f"{folder}: weights_files must be plain names weights*.safetensors, got {bad[:3]}")
    return [folder / name for name in names]


def load_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a trained model folder (all of its :func:`weight_files`)."""
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for path in weight_files(folder):
        out.update(load_file(str(path)))
    return out


def share_weights(folder: Path, like: str = MODEL_CONFIG) -> None:
    """Give ``folder``'s ``*.safetensors`` files the permissions of its file ``like`` (written as any file is, under
    the umask): safetensors writes its files private (0600), which other users of a shared model folder could not
    read. Every writer of weights calls it once its JSON is written."""
    mode = (Path(folder) / like).stat().st_mode & 0o777
    for path in Path(folder).glob("*.safetensors"):
        path.chmod(mode)


def save_weights(folder: str | Path, tensors: dict[str, torch.Tensor],
                 max_bytes: int = MAX_WEIGHT_FILE_BYTES) -> list[str]:
    """Write ``tensors`` as :data:`MODEL_WEIGHTS`, then ``weights-2.safetensors``, ... each at most
    ``max_bytes`` of tensor data (a tensor larger than that gets a file of its own); returns the names, for
    the config's ``weights_files``."""
    from safetensors.torch import save_file

    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in sorted(tensors.items()):  # one order whatever the caller's: the same files
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor.contiguous()
        size += nbytes
    names = [MODEL_WEIGHTS] + [f"weights-{i}.safetensors" for i in range(2, len(shards) + 1)]
    for name, shard in zip(names, shards):
        save_file(shard, str(Path(folder) / name))
    return names


def load_head(folder: str | Path, *, head_only: bool = False) -> nn.Module | None:
    """The head of a trained model folder, in eval mode (``None`` if it has none).

    ``head_only=True`` refuses a folder that also trained transformer layers (a head alone would not
    reproduce it; use ``Encoder(model=folder)``).
    """
    config = read_model_config(folder)
    if not config.get("head"):
        return None
    weights = load_weights(folder)
    if head_only and any(k.startswith("encoder.") for k in weights):
        raise FewShotError(f"{folder} holds trained encoder layers; evaluate it with Encoder(model=folder)")
    return head_from(config, weights)


def head_from(config: dict[str, Any], weights: dict[str, torch.Tensor]) -> nn.Module | None:
    """The head described by a model folder's config, with its ``head.*`` weights, in eval mode (None: no head)."""
    if not config.get("head"):
        return None
    head = build_head(config["head"])
    head.load_state_dict({k[len("head."):]: v.float() for k, v in weights.items() if k.startswith("head.")})
    return head.eval()
