"""Encoder: a sentence-transformers model (plus an optional meta-trained part) -> unit vectors.

Which weights a name means is :mod:`fewshot.encoders.registry`'s job. Embeddings are L2-normalised,
encoded in length-sorted batches (less padding) and cached per text, so re-encoding the same support
examples costs nothing. ``int8=True`` runs the transformer's linear layers as int8 matrix products (see
:mod:`fewshot.encoders.int8`); a trained head stays in float.

``extra_layers``: the mean-pooled hidden states of these transformer layers are appended to the sentence
embedding (each part unit length, the whole re-normalised), from the same forward pass. Lower layers keep
more of a sentence's wording, which the final layer's embedding partly averages away; for MiniLM-L6, layer 4
raised 5- and 10-shot accuracy on both benchmark sets and the out-of-scope AUROC (``bench/accuracy.py``,
``bench/oos.py``; English data only). ``"auto"``: ``(4,)`` on the bundled MiniLM (``default``, ``minilm``
and heads trained on it), ``(6,)`` on all-mpnet-base-v2 (``mpnet``; chosen on the valid splits, see
docs/research/encoders.md), none on other models (not measured there).

A text's vector is bitwise the same whatever else is encoded with it and however many threads torch
uses (so ``classify --engine ray`` writes what the local engine writes) once MKL runs in strict CNR mode
(:func:`fewshot.encoders.determinism.strict_blas`, applied by the CLI and the Ray actors) and because a
batch only holds texts of one token count, so no text is ever padded (:data:`LENGTH_BUCKET`; fp32 and int8
alike; int8 products are exact integers, and its row scales see one token each).
"""

from __future__ import annotations

import copy
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import FewShotError, FewShotWarning, user_stacklevel
from ..progress import Progress, takes_progress_bar
from ..text import MAX_TEXT_CHARS
from .heads import head_from, load_weights, read_model_config, weight_files
from .int8 import model_inputs
from .registry import BASE_MODEL, ModelSpec, bundled_minilm_path, hub_reachable, is_mpnet, resolve_model

AUTO_EXTRA_LAYERS = (4,)
"""``extra_layers="auto"`` on the bundled MiniLM-L6 (6 layers): layer 4 (see the module docstring)."""
MPNET_AUTO_EXTRA_LAYERS = (6,)
"""``extra_layers="auto"`` on all-mpnet-base-v2 (12 layers): layer 6, chosen on the valid splits
(docs/research/encoders.md)."""

LENGTH_BUCKET = 1
"""Token counts ``n`` and ``n'`` share a batch only when ``n // LENGTH_BUCKET == n' // LENGTH_BUCKET``: 1, texts
of one token count only. A text's vector changes with the padded length of its batch: MKL's products inside
attention (query x key, weights x value) pick their kernels by the number of keys, and on AMD EPYC (AVX-512,
strict CNR mode) even 3 vs 7 keys, the padding masked, change the scores' last bits (a bucket of 8 was
enough on Intel Xeon, not there). No padding at all also computes less; it costs more, smaller batches."""


def open_sentence_transformer(base: str) -> Any:
    """A new sentence-transformer of ``base`` (a folder or a hub id) on the CPU; a hub id comes from the local
    Hugging Face cache alone when the hub cannot be reached (:func:`~fewshot.encoders.registry.hub_reachable`),
    so that offline a missing one fails at once. Errors name the model."""
    from sentence_transformers import SentenceTransformer

    offline = not Path(base).expanduser().exists() and not hub_reachable()  # a hub id, and no hub: the cache only
    try:
        with _no_progress_bars():  # "Loading weights" bars would clutter every CLI run
            return SentenceTransformer(base, device="cpu", local_files_only=offline)
    except Exception as exc:  # sentence-transformers raises OSError/ValueError/HF errors alike
        why = ("it is no folder here, the hub cannot be reached, and the Hugging Face cache has no usable copy"
               if offline else str(exc))
        raise FewShotError(f"could not load the encoder {base!r}: {why}. Pass a sentence-transformers "
                           f"folder or hub id with --model / FEWSHOT_MODEL, or {BASE_MODEL!r}") from exc


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers' and huggingface_hub's progress bars off for the enclosed load, then each as it was before:
    turning them off for good would also hide the bars of the user's own later Hugging Face work."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    transformers_on, hub_off = hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()
    if transformers_on or not hub_off:
        hf_logging.disable_progress_bar()  # transformers' switch turns the hub's off too
    try:
        yield
    finally:
        if transformers_on:
            hf_logging.enable_progress_bar()  # the hub's too: put back just below
        if hub_off != are_progress_bars_disabled():
            (disable_progress_bars if hub_off else enable_progress_bars)()


@lru_cache(maxsize=4)
def _load_sentence_transformer(base: str) -> Any:
    """Load (once per process) a read-only sentence-transformer; weights are shared, labels never are."""
    model = open_sentence_transformer(base)
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    if config is not None and hasattr(config, "output_hidden_states"):
        # sentence-transformers then also returns every layer's states (``all_layer_embeddings``), which
        # ``extra_layers`` pools; they are computed anyway, only kept until the batch ends (an A/B of
        # throughput with and without could not separate the two from the machine's noise). Set once, at load.
        config.output_hidden_states = True
    model.eval()
    return model


def transformer_depth(model: Any) -> int | None:
    """Number of transformer layers of a sentence-transformer whose layer states are exposed, else None."""
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    if config is None or not getattr(config, "output_hidden_states", False):
        return None
    depth = getattr(config, "num_hidden_layers", None)
    return int(depth) if isinstance(depth, int) else None


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Unit-length mean of each text's token states over its real tokens (sentence-transformers' mean pooling)."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    summed = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(summed.float(), dim=-1)


@lru_cache(maxsize=4)
def _load_model(spec: ModelSpec) -> tuple[Any, torch.nn.Module | None]:
    """Base model, with the trained parts of a ``fewshot train`` folder over it."""
    return _with_trained_parts(spec)


def _private_model(base: str) -> Any:
    """A fresh load of ``base`` that no other thread uses. The shared one may be mid-forward in another thread,
    and an int8 copy taken from it then gave other vectors than one taken alone (or crashed)."""
    return _load_sentence_transformer.__wrapped__(base)


def _with_trained_parts(spec: ModelSpec, model: Any = None, *,
                        private: bool = False) -> tuple[Any, torch.nn.Module | None]:
    """``model`` (the base; None: the shared one, loaded only if no trained layers replace it) with the trained
    parts of ``spec``'s folder, if any; ``private``: ``model`` is nobody else's, so trained layers may be
    written into it."""
    head = None
    if spec.trained_dir is not None:
        folder = Path(spec.trained_dir)
        config = read_model_config(folder)
        weights = load_weights(folder)
        encoder_weights = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
        if encoder_weights:  # trained transformer layers: a private model so the base stays shared
            model = model if private else _private_model(spec.base)
            state = model.state_dict()
            unknown = sorted(set(encoder_weights) - set(state))
            if unknown:
                raise FewShotError(f"{folder}: weights {unknown[:3]} do not fit the base model {spec.base!r}")
            model.load_state_dict({k: v.to(state[k].dtype) for k, v in encoder_weights.items()}, strict=False)
        head = head_from(config, weights)
    return (_load_sentence_transformer(spec.base) if model is None else model), head


@lru_cache(maxsize=8)
def trained_digest(spec: ModelSpec) -> str | None:
    """First 16 hex digits of the SHA-256 of ``spec``'s trained weights (None: no trained folder). Names the
    weights in ``describe()`` and in saved classifiers, whose vectors fit these weights only: ``"default"``
    changes weights between releases under one name."""
    if spec.trained_dir is None:
        return None
    import hashlib

    digest = hashlib.sha256()
    for path in weight_files(spec.trained_dir):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=4)
def _load_int8(spec: ModelSpec) -> Any:
    """The int8 encoder of ``spec``, made once per process (quantising and packing the layers;
    its row quantiser compiles later, once a run is long enough to repay it; see :mod:`fewshot.encoders.int8`).

    Quantised from a private fresh load of the weights, never from the shared fp32 model, which another thread
    may be running (:func:`_private_model`): the int8 encoder is the same whenever it is made.
    """
    from .int8 import Int8Encoder

    return Int8Encoder(_with_trained_parts(spec, _private_model(spec.base), private=True)[0])


class Encoder:
    """Encodes texts to L2-normalised float32 vectors, with a per-text LRU cache.

    >>> enc = Encoder()                      # the default model
    >>> enc.encode(["hello", "hi"]).shape    # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, model: str | None = None, *, batch_size: int = 64, cache_size: int = 50_000,
                 int8: bool = False, extra_layers: Sequence[int] | str = "auto", quantize: bool | None = None) -> None:
        if quantize is not None:
            warnings.warn("Encoder(quantize=...) is deprecated: pass int8=...", FutureWarning, stacklevel=2)
            int8 = bool(quantize)
        if batch_size < 1:
            raise FewShotError(f"batch_size must be >= 1, got {batch_size}")
        self.spec = resolve_model(model)
        self.batch_size = batch_size
        self.int8 = bool(int8)
        self._model, self._head = _load_model(self.spec)
        self.extra_layers: tuple[int, ...] = self._check_layers(extra_layers)
        self._int8 = _load_int8(self.spec) if self.int8 else None
        base_dim = int(self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension")
                       else self._model.get_sentence_embedding_dimension())
        hidden = int(getattr(self._model[0].auto_model.config, "hidden_size", 0)) if self.extra_layers else 0
        self.dim: int = base_dim + hidden * len(self.extra_layers)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> Encoder:
        """The same encoder: a frozen model (and its cache of vectors) that classifiers share. scikit-learn's
        ``clone`` deep-copies a classifier's parameters; a copy would load the model again for the same vectors."""
        return self

    def _check_layers(self, layers: Sequence[int] | str) -> tuple[int, ...]:
        """``extra_layers`` as a tuple, checked against the model's depth (``"auto"``: see the module docstring)."""
        depth = transformer_depth(self._model)
        if isinstance(layers, str):
            if layers != "auto":
                raise FewShotError(f"extra_layers must be 'auto' or a list of layer numbers, got {layers!r}")
            if self.spec.base == str(bundled_minilm_path()) and depth == 6:
                return AUTO_EXTRA_LAYERS
            return MPNET_AUTO_EXTRA_LAYERS if is_mpnet(self.spec.base) and depth == 12 else ()
        try:
            out = tuple(int(k) for k in layers)
        except (TypeError, ValueError):
            raise FewShotError(f"extra_layers must be 'auto' or a list of layer numbers, got {layers!r}") from None
        if out and depth is None:
            raise FewShotError(f"extra_layers={list(out)} needs a transformer whose layer states can be read; model "
                               f"{self.spec.name!r} exposes none. Pass extra_layers=[]")
        bad = [k for k in out if not 0 <= k < (depth or 0)]
        if bad or len(set(out)) != len(out):
            raise FewShotError(f"extra_layers must be distinct layer numbers from 0 (the token embeddings) to "
                               f"{(depth or 1) - 1} for model {self.spec.name!r}, got {list(out)}")
        return out

    @property
    def name(self) -> str:
        return self.spec.name

    def similarity_floor(self) -> float:
        """Least cosine for two texts to count as alike when a batch is read together: the cosine the reading was
        tuned with (:data:`fewshot.batch_reading.BATCH_NEAR`) for MiniLM-L6 with layer 4 appended (the default's
        base), and for any other encoder the cosine that as large a share of pairs of varied sentences exceed
        (:func:`fewshot.batch_reading.encoder_floor`): its vectors are on another scale."""
        from ..batch_reading import BATCH_NEAR, encoder_floor

        if self.spec.base == str(bundled_minilm_path()) and self.extra_layers == AUTO_EXTRA_LAYERS:
            return BATCH_NEAR
        return encoder_floor(self)

    @property
    def weights_digest(self) -> str | None:
        """:func:`trained_digest` of this encoder's model (None: no trained folder)."""
        return trained_digest(self.spec)

    @property
    def quantize(self) -> bool:
        """Deprecated name of :attr:`int8`."""
        warnings.warn("Encoder.quantize is deprecated: read Encoder.int8", FutureWarning, stacklevel=2)
        return self.int8

    def describe(self) -> dict[str, Any]:
        """What is in use: model name, base weights, trained folder and its weights' digest, int8."""
        return {"model": self.spec.name, "base": self.spec.base, "trained": self.spec.trained_dir,
                "weights": self.weights_digest, "int8": self.int8, "dim": self.dim,
                "extra_layers": list(self.extra_layers),
                "backend": f"torch int8 ({self._int8.backend})" if self._int8 else "torch fp32"}

    @takes_progress_bar("encoding")
    def encode(self, texts: Sequence[str], *, progress: Progress = None) -> np.ndarray:
        """Encode ``texts`` into an ``(n, dim)`` float32 array of unit vectors (cached per text); ``progress``: a
        ``progress(done, total)`` callback, or True for a tqdm bar."""
        texts = list(texts)
        with self._lock:
            found = {t: self._cache[t] for t in dict.fromkeys(texts) if t in self._cache}
        missing = sorted((t for t in dict.fromkeys(texts) if t not in found), key=len)  # little padding
        total, done = len(missing), 0
        if progress:
            progress(0, total)
        for idx, vecs in self._encode_uncached(missing):  # batch by batch, as they are ready
            part = [missing[i] for i in idx]
            found.update(zip(part, vecs))
            with self._lock:
                for text, vec in zip(part, vecs):
                    self._remember(text, vec)
            done += len(idx)
            if progress:
                progress(done, total)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = found[text]
        return out

    def _remember(self, text: str, vec: np.ndarray) -> None:
        self._cache[text] = vec
        self._cache.move_to_end(text)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    @torch.inference_mode()
    def _encode_uncached(self, texts: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(indices into texts, their unit vectors)`` per batch, in order; int8 batches run side by side."""
        long = sum(len(t) > MAX_TEXT_CHARS for t in texts)
        if long:
            reads = f"the first {self.max_tokens} word pieces" if self.max_tokens else "only their start"
            warnings.warn(f"{long} text(s) longer than {MAX_TEXT_CHARS:,} characters were cut to that length "
                          f"(the encoder reads {reads})", FewShotWarning, stacklevel=user_stacklevel())
            texts = [t[:MAX_TEXT_CHARS] for t in texts]
        batches = self._batches(texts)
        if self._int8 is not None:  # all batches queued at once, finished on the workers (see fewshot.encoders.int8)
            vectors = self._int8.encode_batches([[texts[i] for i in idx] for idx in batches], finish=self._vectors)
        else:
            vectors = (self._vectors(self._model(model_inputs(self._model, [texts[i] for i in idx])))
                       for idx in batches)
        for idx, vecs in zip(batches, vectors):
            yield idx, vecs.numpy()

    def _vectors(self, out: dict[str, Any]) -> torch.Tensor:
        """The model's output for one batch -> unit vectors: sentence embedding (through the head, if any),
        then the mean-pooled ``extra_layers``."""
        emb = out["sentence_embedding"].float()
        if self._head is not None:  # one text at a time: MKL's product takes other kernels for 1, 2 or more rows
            emb = torch.cat([self._head(row) for row in emb.split(1)])
        emb = torch.nn.functional.normalize(emb, dim=-1)
        if not self.extra_layers:
            return emb
        states = out["all_layer_embeddings"]
        parts = [emb, *(mean_pool(states[k], out["attention_mask"]) for k in self.extra_layers)]
        return torch.nn.functional.normalize(torch.cat(parts, dim=-1), dim=-1)

    @property
    def max_tokens(self) -> int | None:
        """How many word pieces of a text the encoder reads (the model's ``max_seq_length``; None: unknown).
        The rest of a longer text does not count."""
        limit = getattr(self._model, "max_seq_length", None)
        return int(limit) if limit else None

    def over_length(self, texts: Sequence[str]) -> np.ndarray:
        """Whether each text has more word pieces than the encoder reads (:attr:`max_tokens`), so that only its
        start counts; all False when the model has no tokenizer or limit to tell."""
        limit = self.max_tokens
        lengths = self._token_lengths([str(t)[:MAX_TEXT_CHARS] for t in texts]) if limit and len(texts) else None
        return np.zeros(len(texts), dtype=bool) if lengths is None else lengths > limit

    def _token_lengths(self, texts: list[str]) -> np.ndarray | None:
        """Word pieces per text, special tokens included, not cut at :attr:`max_tokens` (None: no tokenizer)."""
        tokenizer = self._counting_tokenizer
        if tokenizer is None:
            return None
        with self._count_lock:  # a tokenizer may not be called while another thread changes its settings
            ids = tokenizer(texts, truncation=False, verbose=False, return_attention_mask=False,
                            return_token_type_ids=False)["input_ids"]
        return np.fromiter(map(len, ids), dtype=np.int64, count=len(texts))

    @cached_property
    def _counting_tokenizer(self) -> Any:
        """A private copy of the model's tokenizer for counting tokens (None when it has none; made on first
        use, 70 ms).

        A fast tokenizer keeps its padding / truncation settings as state that each call may change; the
        model's own, used by ``encode`` in other threads (app sessions), must never see ours.
        """
        tokenizer = getattr(self._model, "tokenizer", None)
        return copy.deepcopy(tokenizer) if callable(tokenizer) else None

    def _batches(self, texts: list[str]) -> list[np.ndarray]:
        """Indices of ``texts`` in batches of at most ``batch_size``, length-sorted, one :data:`LENGTH_BUCKET` each."""
        if not texts:
            return []
        lengths = self._token_lengths(texts)
        if lengths is None:  # no tokenizer to count with: plain length-sorted batches
            lengths = np.zeros(len(texts), dtype=np.int64)
        elif self.max_tokens:  # what the model reads of each text
            lengths = np.minimum(lengths, self.max_tokens)
        order = np.argsort(lengths, kind="stable")
        bucket = lengths[order] // LENGTH_BUCKET
        cuts = np.flatnonzero(np.diff(bucket)) + 1
        size = self.batch_size
        return [group[i:i + size] for group in np.split(order, cuts) for i in range(0, len(group), size)]


def over_length_note(count: int, limit: int | None) -> str:
    """What to tell a user when ``count`` texts have more word pieces than the encoder reads (``limit``)."""
    one = count == 1
    return (f"{count} text{'' if one else 's'} {'is' if one else 'are'} longer than the encoder reads ({limit} word "
            f"pieces, about a paragraph): only {'its' if one else 'their'} start counts; split "
            f"{'it' if one else 'long texts'} where the rest matters")
