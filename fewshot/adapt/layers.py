"""The trainable top of a sentence-transformer, run on cached outputs of its frozen lower layers.

Only the top ``n`` transformer layers change during adaptation, so the token states entering them are
computed once per example (:func:`lower_states`) and every training step runs just those ``n`` layers.
The sentence vector is the product's: mean-pooled last layer -> optional (frozen) head -> unit length, with
the mean-pooled states of ``extra_layers`` appended (each unit length, the whole re-normalised).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..encoders.encoder import mean_pool
from ..encoders.int8 import model_inputs
from ..errors import FewShotError


def transformer_of(model: Any) -> nn.Module:
    """The Hugging Face encoder (``BertModel``-like) inside a sentence-transformer, with mean pooling checked."""
    first = model[0]
    auto = getattr(first, "auto_model", None) or getattr(first, "model", None)
    layers = getattr(getattr(auto, "encoder", None), "layer", None)
    if auto is None or getattr(auto, "embeddings", None) is None or not isinstance(layers, nn.ModuleList):
        raise FewShotError("fine-tuning needs a BERT-like sentence-transformer (embeddings + encoder.layer); "
                           f"got {type(auto).__name__}")
    pooling = model[1] if len(model) > 1 else None
    mode = getattr(pooling, "pooling_mode", None) or ("mean" if getattr(pooling, "pooling_mode_mean_tokens", False)
                                                      else None)
    if mode != "mean":
        raise FewShotError(f"fine-tuning supports mean-pooled sentence-transformers; this one pools by {mode!r}")
    return auto


def layer_prefix(model: Any) -> str:
    """State-dict prefix of the transformer layers, e.g. ``"0.auto_model.encoder.layer."`` (version dependent)."""
    layers = transformer_of(model).encoder.layer
    names = {id(m): n for n, m in model.named_modules()}
    return names[id(layers)] + "."


def transformer_prefix(model: Any) -> str:
    """State-dict prefix of the Hugging Face encoder inside ``model``, e.g. ``"0.auto_model."`` (version
    dependent); the names after it (``encoder.layer.4.attention...``) are the transformer's own, stable ones."""
    auto = transformer_of(model)
    names = {id(m): n for n, m in model.named_modules()}
    return names[id(auto)] + "."


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(b, L) 0/1 mask -> (b, 1, 1, L) additive mask (0 for tokens, a large negative for padding)."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class PositionBias(nn.Module):
    """A frozen copy of MPNet's relative-position attention bias (Song et al. 2020, "MPNet"): the encoder computes
    it once from the states' length and every layer adds it to its attention scores, so layers run outside the
    encoder need it too. Computed by the encoder class's own ``compute_position_bias``."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.relative_attention_bias = copy.deepcopy(encoder.relative_attention_bias).requires_grad_(False)
        self.relative_position_bucket = type(encoder).relative_position_bucket  # a static method: no binding
        self._compute = type(encoder).compute_position_bias

    @torch.no_grad()
    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self._compute(self, states)


def position_bias(auto: nn.Module) -> PositionBias | None:
    """The encoder's per-forward attention bias when it has one (MPNet); None for BERT-like encoders."""
    encoder = auto.encoder
    if hasattr(encoder, "compute_position_bias") and hasattr(encoder, "relative_attention_bias"):
        return PositionBias(encoder)
    return None


def run_layers(layers: Sequence[nn.Module], states: torch.Tensor, attention_mask: torch.Tensor,
               keep: Callable[[int, torch.Tensor], None] | None = None,
               bias: PositionBias | None = None) -> torch.Tensor:
    """Run ``layers`` on ``states``; ``keep(i, out)`` sees each layer's output; ``bias`` is the encoder's
    relative-position bias where it has one (MPNet)."""
    mask = additive_mask(attention_mask, states.dtype)
    extra = {} if bias is None else {"position_bias": bias(states)}
    for i, layer in enumerate(layers):
        out = layer(states, attention_mask=mask, **extra)
        states = out[0] if isinstance(out, tuple) else out
        if keep is not None:
            keep(i, states)
    return states


@dataclass
class Cached:
    """Per example: the token states entering the first trained layer (unpadded) and pooled frozen extra layers."""

    states: list[torch.Tensor]  # each (tokens, hidden)
    extras: dict[int, torch.Tensor]  # extra layer k (frozen, k <= start) -> (n, hidden) unit vectors


@torch.no_grad()
def lower_states(model: Any, texts: Sequence[str], start: int, extra_layers: Sequence[int],
                 batch_size: int = 64, cancel: Callable[[], bool] | None = None) -> Cached | None:
    """Run the frozen embeddings and layers ``< start`` once on ``texts``; None when ``cancel`` says stop."""
    auto = transformer_of(model)
    layers = list(auto.encoder.layer)[:start]
    bias = position_bias(auto)
    states: list[torch.Tensor] = []
    frozen = [k for k in extra_layers if k <= start]
    pooled: dict[int, list[torch.Tensor]] = {k: [] for k in frozen}
    was_training = auto.training
    auto.eval()
    try:
        for i in range(0, len(texts), batch_size):
            if cancel is not None and cancel():
                return None
            feats = model_inputs(model, texts[i:i + batch_size])
            mask = feats["attention_mask"]
            kept = {}
            h = auto.embeddings(input_ids=feats["input_ids"], token_type_ids=feats.get("token_type_ids"))
            kept[0] = h
            h = run_layers(layers, h, mask, keep=lambda j, out: kept.__setitem__(j + 1, out), bias=bias)
            for k in frozen:
                pooled[k].append(mean_pool(kept[k], mask))
            for row, n in zip(h, mask.sum(dim=1).tolist()):
                states.append(row[:n].clone())
    finally:
        auto.train(was_training)
    return Cached(states, {k: torch.cat(v) if v else torch.empty(0) for k, v in pooled.items()})


def pad(states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack unpadded (tokens, hidden) tensors into (b, L, hidden) states and a (b, L) mask."""
    longest = max(s.shape[0] for s in states)
    out = states[0].new_zeros((len(states), longest, states[0].shape[1]))
    mask = torch.zeros((len(states), longest), dtype=torch.long)
    for i, s in enumerate(states):
        out[i, :s.shape[0]] = s
        mask[i, :s.shape[0]] = 1
    return out, mask


class TopLayers(nn.Module):
    """A private copy of the top transformer layers of a sentence-transformer, mapping cached lower states to the
    product's sentence vector. The original model is never touched."""

    def __init__(self, model: Any, n_layers: int, head: nn.Module | None = None,
                 extra_layers: Sequence[int] = ()) -> None:
        super().__init__()
        auto = transformer_of(model)
        depth = len(auto.encoder.layer)
        if not 1 <= n_layers <= depth:
            raise FewShotError(f"layers must be between 1 and {depth} (the model's depth), got {n_layers}")
        bad = [k for k in extra_layers if not 0 <= k <= depth]
        if bad:
            raise FewShotError(f"extra_layers must be layer numbers from 0 to {depth}, got {list(extra_layers)}")
        self.depth = depth
        self.start = depth - n_layers
        self.layers = nn.ModuleList(copy.deepcopy(auto.encoder.layer[self.start:]))
        self.bias = position_bias(auto)  # frozen; not among the trained tensors
        self.head = copy.deepcopy(head) if head is not None else None
        if self.head is not None:
            self.head.requires_grad_(False)
            self.head.eval()
        self.extra_layers = tuple(extra_layers)
        self.prefix = layer_prefix(model)

    def train(self, mode: bool = True) -> TopLayers:
        super().train(mode)
        if self.head is not None:
            self.head.eval()  # frozen, whatever the mode
        return self

    def forward(self, cached: Cached, rows: Sequence[int]) -> torch.Tensor:
        """Unit sentence vectors of the cached examples ``rows`` (gradients flow into the trained layers)."""
        states, mask = pad([cached.states[i] for i in rows])
        kept: dict[int, torch.Tensor] = {}
        out = run_layers(self.layers, states, mask, keep=lambda j, h: kept.__setitem__(self.start + j + 1, h),
                         bias=self.bias)
        emb = mean_pool(out, mask)  # the model's mean pooling + normalisation
        if self.head is not None:
            emb = self.head(emb)
        emb = nn.functional.normalize(emb, dim=-1)
        if not self.extra_layers:
            return emb
        index = torch.as_tensor(list(rows), dtype=torch.long)
        parts = [emb] + [cached.extras[k][index] if k <= self.start else mean_pool(kept[k], mask)
                         for k in self.extra_layers]
        return nn.functional.normalize(torch.cat(parts, dim=-1), dim=-1)

    @torch.no_grad()
    def embed(self, cached: Cached, rows: Sequence[int], batch_size: int = 256) -> torch.Tensor:
        """:meth:`forward` without gradients, in eval mode, in batches."""
        was = self.training
        self.eval()
        try:
            return torch.cat([self(cached, rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)])
        finally:
            self.train(was)

    def trained_state(self, half: bool) -> dict[str, torch.Tensor]:
        """The trained layers' tensors under the sentence-transformer's ``state_dict`` names (float32 values,
        rounded to float16 values when ``half``)."""
        out = {}
        for name, tensor in self.layers.state_dict().items():
            index, rest = name.split(".", 1)
            value = tensor.detach().float()
            if half:
                value = value.half().float()
            out[f"{self.prefix}{self.start + int(index)}.{rest}"] = value.clone()
        return out
