"""The int8 encoder: the sentence-transformer with every ``nn.Linear`` made an int8 matrix product, in PyTorch.

Quantisation (:class:`Int8Linear`): weights int8 with one scale per output column (symmetric,
``max |W_j| / 127``); activations quantised at run time with **one scale per row** (per token, its own
largest magnitude), the per-token scheme of LLM.int8() (Dettmers et al., 2022, without the fp16 outlier
split) and ZeroQuant (Yao et al., 2022). Integer products are exact and a row's scale depends on that
token alone, so a text's vector never depends on its batch mates (the float parts around, attention
above all, need a batch of one token count, :data:`fewshot.encoders.encoder.LENGTH_BUCKET`); the outlier
dimensions of a few tokens ([CLS], [SEP]) cannot coarsen everyone else's grid (one scale per batch lost
1.3 points on HWU64).

The product runs in oneDNN's u8 x s8 kernel (``torch.ops.onednn.qlinear_pointwise``: VNNI / AMX), which
also applies the column scales; activations are uint8 around 128 because u8 x s8 is what the CPU's int8
instructions multiply natively (oneDNN's s8 x s8 was 3.8x slower in a one-off comparison). Where oneDNN's int8 kernel is
missing, or where it gives a row other bits in a batch than alone (checked once, :func:`gemm_backend`),
``torch._int_mm`` computes the same integers. Attention, layer norm and GELU stay fp32 PyTorch:
measured, they run several times faster than ONNX Runtime's CPU kernels, which made the earlier ONNX
Runtime int8 encoder only 1.5x fp32 (docs/benchmarks.md).

Batches run side by side on a pool of workers, one torch thread each (:class:`Int8Encoder`): on 2 cores the
many small float kernels of a short batch scale poorly across threads, two batches at once do not.

Start-up counts as much as the products for a CSV of a few thousand texts, all the more for
all-mpnet-base-v2 (85 M weights in its linear layers): the copy shares every fp32 tensor (:func:`quantize_model`),
the layers are quantised and packed on the same one-thread workers, and the row quantiser is compiled only
once a run has been long enough to repay it (:class:`_RowQuantizer`).
"""

from __future__ import annotations

import copy
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import FewShotError, FewShotWarning

MID = 128
"""Zero point of the uint8 activations: a row's values map to ``round(x / s) + 128`` in [1, 255]."""

_recent = threading.local()  # per thread: the last quantised activation (query, key and value share it)


@lru_cache(maxsize=1)
def gemm_backend() -> str:
    """``"onednn"`` (u8 x s8, fast) or ``"int_mm"`` (s8 x s8), whichever this torch build computes exactly,
    with a row's result the same alone and in a batch (kernels may block differently by row count)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randint(-127, 128, (96, 64), generator=g, dtype=torch.int8)
    w = torch.randint(-127, 128, (16, 64), generator=g, dtype=torch.int8)  # (out, in), as nn.Linear stores it
    scale = torch.rand(16, generator=g)
    want = (a.float() @ w.float().t()) * scale  # integer sums below 2**24: exact in float32

    def exact(product: Callable[[Tensor], Tensor]) -> bool:
        return all(torch.equal(product(a[:rows]), want[:rows]) for rows in (96, 1, 2, 7))

    try:
        packed = torch.ops.onednn.qlinear_prepack(w, None)
        zero = torch.zeros(16, dtype=torch.int64)
        if exact(lambda x: _onednn(x.view(torch.uint8) ^ MID, packed, scale, zero)):
            return "onednn"
    except (AttributeError, RuntimeError, NotImplementedError):
        pass  # no oneDNN int8 kernel in this build or on this CPU: try the portable one
    try:
        wt = w.t().contiguous()
        if exact(lambda x: torch._int_mm(x, wt).float() * scale):
            return "int_mm"
    except (AttributeError, RuntimeError, NotImplementedError):
        pass
    raise FewShotError(f"this PyTorch build ({torch.__version__}) has no int8 matrix product on this CPU; "
                       "run without int8 (no --int8; FEWSHOT_INT8=0 for the app)")


def _onednn(xq: Tensor, packed: Tensor, scale: Tensor, zero: Tensor) -> Tensor:
    """``(xq - 128) @ W * scale`` in float32, with ``W`` int8 as packed by ``qlinear_prepack``."""
    return torch.ops.onednn.qlinear_pointwise(xq, 1.0, MID, packed, scale, zero, None, 1.0, 0, torch.float32,
                                             "none", [], "")


def quantize_rows(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x`` (rows, features) as uint8 with one scale per row: ``x ~ (q - 128) * s``, ``s = max |x_i| / 127``.

    ``q = floor(x / s + 128.5)``: rounding half up, in two passes over ``x`` (scale, then truncate to uint8).
    """
    s = torch.maximum(x.amax(-1, keepdim=True), x.amin(-1, keepdim=True).neg_()).div_(127).clamp_min_(1e-30)
    return torch.mul(x, s.reciprocal()).add_(MID + 0.5).to(torch.uint8), s


class _RowQuantizer:
    """:func:`quantize_rows`, fused into one kernel by ``torch.compile`` once a run is long enough to repay it.

    The same bytes, faster: 2-3x less CPU per row than the plain function at widths 384-3072 (one measurement,
    AMD EPYC; ``bench/speed.py --only encoder`` measures the whole encoder both ways and records the compile's
    CPU seconds). But compiling cost about 2.6 s of CPU in every process (PyTorch caches the kernel on disk,
    not the tracing), what the fused kernel saves over about 3,000 all-mpnet-base-v2 texts (13,000 of MiniLM),
    so a short `fewshot classify` lost more to it than it gained. So the plain function runs first, and
    the quantiser compiles (once, in whichever worker gets there) when it has quantised :attr:`compile_after`
    values in batches of at least :attr:`small` rows, about the CPU time compiling takes (the ski-rental rule:
    never more than twice the better of the two choices made in hindsight). It needs a C++ compiler; where
    compiling fails, the plain function goes on, with one warning (``FEWSHOT_COMPILE=0``: never tried).
    """

    small = 128
    """Below this many rows the plain function runs: the compiled one's call overhead (guards) exceeds its gain."""
    compile_after = 2_500_000_000
    """Values quantised by the plain function before compiling: at about 1 ns each, the 2.6 s of CPU that
    compiling took (AMD EPYC); about 3,000 texts of all-mpnet-base-v2 or 13,000 of MiniLM-L6."""

    def __init__(self, compile_after: int | None = None) -> None:
        self._lock = threading.Lock()
        self._fn: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None  # set once compiling was tried
        self._seen = 0  # values quantised by the plain function in batches of at least ``small`` rows
        if compile_after is not None:
            self.compile_after = compile_after

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        fn = self._fn
        if x.shape[0] < self.small:
            return quantize_rows(x)
        if fn is None:
            self._seen += x.numel()  # unlocked: an update lost between two workers only delays compiling
            if self._seen < self.compile_after:
                return quantize_rows(x)
            fn = self._first(x)
        try:
            return fn(x)
        except Exception as exc:  # a recompilation for a new kind of input failed: the same result, unfused
            self._give_up(exc)
            return quantize_rows(x)

    def _first(self, x: Tensor) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
        with self._lock:  # one compilation, whichever worker arrives first; the others wait for it
            if self._fn is None:
                fn: Callable[[Tensor], tuple[Tensor, Tensor]] = quantize_rows
                if os.environ.get("FEWSHOT_COMPILE", "1").strip().lower() not in {"0", "false", "no", "off"}:
                    try:
                        fused = torch.compile(quantize_rows, dynamic=True)
                        if all(torch.equal(a, b) for a, b in zip(fused(x), quantize_rows(x))):
                            fn = fused
                        else:
                            self._give_up(RuntimeError("the compiled quantiser's bytes differ"))
                    except Exception as exc:  # no compiler, no headers, an unsupported platform ...
                        self._give_up(exc)
                self._fn = fn
            return self._fn

    def _give_up(self, exc: Exception) -> None:
        self._fn = quantize_rows
        warnings.warn(f"int8 encoder: torch.compile is unavailable here ({type(exc).__name__}: {str(exc)[:120]}); "
                      "quantising activations unfused, which is slower (FEWSHOT_COMPILE=0 skips the attempt)",
                      FewShotWarning, stacklevel=2)


_row_quantizer = _RowQuantizer()


def _quantized(x: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`quantize_rows` of ``x``, reusing this thread's last result when it is the same tensor."""
    last = getattr(_recent, "last", None)
    if last is not None and last[0] is x:
        return last[1], last[2]
    xq, s = _row_quantizer(x.reshape(-1, x.shape[-1]))
    _recent.last = (x, xq, s)  # holding x keeps its identity unique; cleared before each batch
    return xq, s


def quantize_weight(w: Tensor) -> tuple[Tensor, Tensor]:
    """``w`` (out, in) as int8 with one scale per output row: ``w ~ q * s``, ``s = max |w_j| / 127``.

    Four passes over ``w`` (min and max together, divide, round in place, narrow to int8) instead of six:
    the weights of all-mpnet-base-v2 (85 M) are quantised at every start. ``|w / s| <= 127`` up to one
    rounding of the division, so no clamp is needed.
    """
    w = w.float()
    low, high = torch.aminmax(w, dim=1)
    scale = torch.maximum(high, low.neg_()).div_(127).clamp_min_(1e-30)
    return torch.div(w, scale[:, None]).round_().to(torch.int8), scale


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 weights (one scale per output) times int8 activations (one scale per row)."""

    def __init__(self, linear: nn.Linear, backend: str | None = None) -> None:
        super().__init__()
        self.backend = backend or gemm_backend()
        wq, scale = quantize_weight(linear.weight.detach())
        self.out_features = wq.shape[0]
        if self.backend == "onednn":
            self.register_buffer("weight", torch.ops.onednn.qlinear_prepack(wq, None))
        else:
            self.register_buffer("weight", wq.t().contiguous())
        self.register_buffer("scale", scale)
        self.register_buffer("zero", torch.zeros(self.out_features, dtype=torch.int64))
        bias = linear.bias.detach().float() if linear.bias is not None else torch.zeros(self.out_features)
        self.register_buffer("bias", bias)

    def forward(self, x: Tensor) -> Tensor:
        xq, s = _quantized(x)
        if self.backend == "onednn":
            y = _onednn(xq, self.weight, self.scale, self.zero)  # column scales applied inside the kernel
        else:
            y = torch._int_mm((xq ^ MID).view(torch.int8), self.weight).float().mul_(self.scale)
        return torch.addcmul(self.bias, y, s, out=y).reshape(*x.shape[:-1], self.out_features)


def quantize_model(model: nn.Module, pool: ThreadPoolExecutor | None = None) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` an :class:`Int8Linear`; the other tensors are shared, not copied.

    ``pool``: one-thread workers (:func:`_one_thread_pool`) that quantise and pack the layers side by side;
    packing (oneDNN's weight reorder) is most of an int8 encoder's start-up, and on a busy 2-core machine
    one torch thread per layer beat two threads per layer (1.2 s vs 2.8 s for all-mpnet-base-v2).
    """
    backend = gemm_backend()
    # every tensor shared, not copied: the copy only reads them (embeddings, norms) or replaces their module
    # (nn.Linear), so the fp32 model is left as it was without copying its 440 MB (all-mpnet-base-v2)
    shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    out = copy.deepcopy(model, memo=shared)
    places = [(module, name, child) for module in out.modules() for name, child in module.named_children()
              if isinstance(child, nn.Linear)]
    make = (pool.map if pool is not None else map)(lambda place: Int8Linear(place[2], backend), places)
    for (module, name, _), layer in zip(places, list(make)):
        setattr(module, name, layer)
    return out.eval()


def model_inputs(model: Any, texts: Sequence[str]) -> dict[str, Any]:
    """The tokenizer's output for ``texts``, exactly as ``SentenceTransformer.encode`` makes it."""
    prepare = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers >= 6 / older
    return prepare(list(texts))


class Int8Encoder:
    """Runs the int8 copy of a sentence-transformer; same tokenizer, pooling and output as the fp32 model.

    Threads: batches run side by side on as many workers as torch has threads (``torch.get_num_threads()``,
    so one setting governs both), each worker on one torch thread; the caller tokenises the next batch
    meanwhile (a tokenizer is not safe to share between threads).
    """

    def __init__(self, model: Any) -> None:
        self.backend = gemm_backend()
        self.workers = max(1, torch.get_num_threads())
        self._pool = _one_thread_pool(self.workers)
        self.model = quantize_model(model, self._pool)
        list(self.encode_batches([["warm up", "on a worker: its first run sets up its kernels"]]))

    def encode_batches(self, batches: Sequence[Sequence[str]],
                       finish: Callable[[dict[str, Any]], Tensor] | None = None) -> Iterator[Any]:
        """Each batch of texts through the model, in order, each as soon as it is ready; every batch is queued
        before the first is returned, so the workers never wait. ``finish`` turns the model's output (a dict
        with ``sentence_embedding``, and ``all_layer_embeddings`` / ``attention_mask`` where the model gives
        them) into the result on the worker itself, on its one thread (pooling on the caller's threads would
        compete with the workers for the cores); without it the dict is returned."""
        runs = [self._pool.submit(self._run, model_inputs(self.model, batch), finish) for batch in batches]
        return (run.result() for run in runs)

    def _run(self, features: dict[str, Any], finish: Callable[[dict[str, Any]], Tensor] | None) -> Any:
        _recent.last = None
        try:
            with torch.inference_mode():
                out = self.model(features)
                if finish is not None:
                    return finish(out)
            return {k: out[k] for k in ("sentence_embedding", "all_layer_embeddings", "attention_mask") if k in out}
        finally:
            _recent.last = None


def _one_thread_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads that each run torch on one thread; other threads keep their setting.

    torch gives a thread its thread count on first use, from a process-wide value that ``set_num_threads``
    also changes; so each worker takes its count first, then sets 1, and the caller restores the value.
    """
    before = torch.get_num_threads()
    ready = threading.Barrier(workers + 1)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fewshot-int8",
                              initializer=_single_threaded)
    for _ in range(workers):
        pool.submit(ready.wait)
    try:
        ready.wait(timeout=60)
    finally:
        torch.set_num_threads(before)
    return pool


def _single_threaded() -> None:
    torch.get_num_threads()  # this thread's first use: takes the process-wide count now, not later
    torch.set_num_threads(1)

