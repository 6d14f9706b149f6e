"""What the classifier needs at fit time from a meta-trained folder: the saved inner loop, run on the support.

``FewShotClassifier(model=FOLDER, adapt="maml" | "fomaml" | "reptile")`` loads the folder's
:class:`MetaModel` (``maml.json`` + ``maml.safetensors``) and :func:`fit_adapted_head` runs the
meta-learned inner loop once on the user's examples (label names included), giving an :class:`AdaptedHead`.
The classifier imports this module only when ``adapt`` is not ``"none"``; it needs no training code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import FewShotError
from ..rules import l2_normalize, softmax
from .maml import (
    PAPERS,
    Params,
    adapt_head,
    centred_features,
    init_params,
    one_hot,
    reptile_adapt,
    shared_weights,
    transform_features,
)
from .training_args import META_METHODS, MetaConfig

ADAPT_METHODS = ("none", *META_METHODS)
"""Values of ``ClassifierConfig.adapt``: ``"none"`` (the rule's own head) or a meta-learning method."""
MAML_CONFIG = "maml.json"
MAML_WEIGHTS = "maml.safetensors"


@dataclass
class MetaModel:
    """Meta-learned θ and the config that produced it; :meth:`save` / :meth:`load` a model folder."""

    params: Params
    config: MetaConfig
    info: dict[str, Any] = field(default_factory=dict)  # training history, seconds, data description

    @property
    def dim(self) -> int:
        return int(self.params["transform.weight"].shape[0])

    def save(self, folder: str | Path) -> Path:
        """Write ``maml.safetensors`` and ``maml.json`` into ``folder`` (created if needed)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().float() for k, v in self.params.items()}, str(folder / MAML_WEIGHTS))
        meta = {"method": self.config.method, "dim": self.dim, "config": asdict(self.config),
                "inner_lr": self.params["log_lr"].exp().tolist(), "scale": float(self.params["log_scale"].exp()),
                "papers": [PAPERS[self.config.method], PAPERS["proto_maml"], PAPERS["anil"], PAPERS["lslr"]],
                "info": self.info}
        (folder / MAML_CONFIG).write_text(json.dumps(meta, indent=2))
        from ..encoders.heads import share_weights

        share_weights(folder, like=MAML_CONFIG)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> MetaModel:
        """Read a folder written by :meth:`save`; :class:`FewShotError` when it holds none."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / MAML_CONFIG).is_file() or not (folder / MAML_WEIGHTS).is_file():
            raise FewShotError(f"{folder} holds no meta-learned inner loop ({MAML_CONFIG} + {MAML_WEIGHTS}); "
                               "train one with `fewshot train --method maml|fomaml|reptile` or use adapt='none'")
        meta = json.loads((folder / MAML_CONFIG).read_text())
        params = {k: v.float() for k, v in load_file(str(folder / MAML_WEIGHTS)).items()}
        missing = sorted(set(init_params(1, MetaConfig()).keys()) - set(params))
        if missing:
            raise FewShotError(f"{folder / MAML_WEIGHTS} lacks {missing}; it was not written by fewshot.meta")
        return cls(params, MetaConfig.from_dict(meta["config"]), meta.get("info", {}))


# ---- fit time: the inner loop on the user's support set ----------------------------------------------
@dataclass
class AdaptedHead:
    """A task-adapted classifier: transform, centre on the support mean, then a linear softmax head."""

    transform_weight: np.ndarray  # (d, d)
    transform_bias: np.ndarray  # (d,)
    center: np.ndarray  # (d,)
    weight: np.ndarray  # (n_classes, d)
    bias: np.ndarray  # (n_classes,)
    scale: float

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Unit-length centred features of raw embeddings ``x`` (n, d)."""
        h = x + x @ self.transform_weight.T + self.transform_bias
        return l2_normalize(l2_normalize(h) - self.center)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Per-class logits ``scale · z Wᵀ + b`` (n, n_classes)."""
        return self.scale * (self.transform(np.asarray(x, dtype=np.float32)) @ self.weight.T) + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Softmax of :meth:`logits` (n, n_classes)."""
        return softmax(self.logits(x))


def fit_adapted_head(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, model: MetaModel
                     ) -> AdaptedHead:
    """Run the meta-learned inner loop once on a support set (deterministic; milliseconds for 77 × 5 rows)."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != model.dim:
        raise FewShotError(f"the meta-learned model expects {model.dim}-d embeddings, got shape {x.shape}; "
                           "use the encoder the model was trained on")
    xs = torch.from_numpy(np.ascontiguousarray(x))
    ys = one_hot(np.asarray(labels), n_classes)
    p = {k: v.detach() for k, v in model.params.items()}
    steps = model.config.inner_steps
    with torch.enable_grad():
        if model.config.method == "reptile":
            fast = reptile_adapt(shared_weights(p), transform_features(xs), ys, steps=steps, lrs=p["log_lr"].exp())
            shared = shared_weights(fast)
            head = {"weight": fast["head.weight"], "bias": fast["head.bias"]}
        else:
            shared = shared_weights(p)
            zs, _, _ = centred_features(p, xs)
            head = adapt_head(p, zs, ys, steps=steps)
        _, _, center = centred_features(shared, xs)
    return AdaptedHead(shared["transform.weight"].detach().numpy().copy(),
                       shared["transform.bias"].detach().numpy().copy(),
                       center.detach().numpy().copy(), head["weight"].detach().numpy().copy(),
                       head["bias"].detach().numpy().copy(), float(shared["log_scale"].exp()))
