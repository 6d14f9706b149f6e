"""The int8 encoder: the sentence-transformer exported once to ONNX, int8-quantised, run by ONNX Runtime.

Quantisation (:func:`quantize_rows`): every weight MatMul becomes int8 weights, one scale per output
column, times int8 activations with **one scale per row** (per token), computed at run time. A row's scale
is its own largest magnitude, so a text's vector depends on its tokens alone, never on its batch mates or
their padding, and the outlier dimensions of a few tokens ([CLS], [SEP]) cannot coarsen everyone else's
grid. This is the per-token activation scheme of LLM.int8() (Dettmers et al., 2022, without the fp16
outlier split) and ZeroQuant (Yao et al., 2022). Measured (``bench/speed.py --only int8``): accuracy on
the HWU64 / CLINC150 5-shot splits within 0.1 point of fp32, where ONNX Runtime's stock dynamic
quantisation (one scale per batch) lost 1.3 points on HWU64. The activations use uint8 with zero point
128 because that is the pair ONNX Runtime's int8 GEMM runs fast (int8 x int8 was eight times slower).

The export (about ten seconds) is made once per model and cached on disk under
``$FEWSHOT_CACHE/onnx`` (default ``~/.cache/fewshot/onnx``), keyed by the weights' content and the
versions involved; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .encoder import cache_root
from .errors import FewShotError

EXPORT_VERSION = 3  # bump when the export or quantisation recipe changes (old files are then ignored)
OPSET = 17
QUANT_OPSET = 21
"""The quantised graph's opset: 21 brings QuantizeLinear with one scale per block (here: per row)."""
PAD_MULTIPLE = 8
"""Token counts are padded up to a multiple of this. Measured: without it, a fifth of the texts came out a
few 1e-8 apart in another batch (float kernels' vector loops end differently); with it, none did."""
_export_lock = threading.Lock()


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise FewShotError("the int8 encoder (quantize=True, --quantize) needs onnxruntime and onnx; install them "
                           "with `pip install onnxruntime onnx`, or run without quantize") from exc
    return onnxruntime


def _features(model: Any, texts: Sequence[str]) -> dict[str, Any]:
    """The tokenizer's output for ``texts``, exactly as ``SentenceTransformer.encode`` makes it."""
    prepare = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers >= 6 / older
    return prepare(list(texts))


def model_key(model: torch.nn.Module) -> str:
    """Content hash of the weights plus the versions that shape the exported file."""
    onnxruntime = _require_onnxruntime()
    h = hashlib.sha256(json.dumps([EXPORT_VERSION, OPSET, QUANT_OPSET, torch.__version__,
                                   onnxruntime.__version__]).encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensor.detach().cpu().float().numpy()).data)
    return h.hexdigest()[:32]


class _Export(torch.nn.Module):
    """The whole sentence-transformer (transformer, pooling, normalisation) with tensors in and out."""

    def __init__(self, model: Any, names: list[str], extras: dict[str, Any]) -> None:
        super().__init__()
        self.model, self.names, self.extras = model, names, extras

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, tensors)) | self.extras)["sentence_embedding"]


def export_onnx(model: Any, path: Path, *, quantize: bool = True) -> Path:
    """Write ``model`` to ``path`` as ONNX (int8 when ``quantize``); atomic, so a crash leaves no half file."""
    _require_onnxruntime()
    import onnx

    feats = _features(model, ["an example sentence", "two"])
    names = [k for k, v in feats.items() if isinstance(v, torch.Tensor)]
    extras = {k: v for k, v in feats.items() if not isinstance(v, torch.Tensor)}
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter, not the user's business
            torch.onnx.export(_Export(model, names, extras).eval(), tuple(feats[n] for n in names), str(fp32),
                              input_names=names, output_names=["embedding"], dynamic_axes=axes,
                              opset_version=OPSET, **kwargs)
        out = fp32
        if quantize:
            out = Path(tmp) / "int8.onnx"
            onnx.save(quantize_rows(onnx.load(str(fp32))), str(out))
        os.replace(out, path)
    return path


def quantize_rows(model: Any) -> Any:
    """``model`` (an fp32 ``onnx.ModelProto``) with each weight MatMul ``x @ W`` made int8, scaled per row of x.

    ``W`` becomes int8 with one scale per output column (symmetric, ``max |W[:, j]| / 127``); ``x`` is
    quantised at run time with one scale per row (``max |x[i, :]| / 127``, uint8 around 128). The integer
    product is exact; ``MatMulIntegerToFloat`` applies the column scales, one ``Mul`` the row scales. MatMuls
    reading the same ``x`` (query, key, value) share its quantisation.
    """
    from onnx import TensorProto, helper, numpy_helper, version_converter

    model = version_converter.convert_version(model, QUANT_OPSET)
    graph = model.graph
    weights = {w.name: w for w in graph.initializer if len(w.dims) == 2}

    def constant(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    one, eps, inv127, zero, mid, mid_u8, last = (
        constant(f"rowq_{n}", np.array(v, dtype=t)) for n, v, t in [
            ("one", 1, np.float32), ("eps", 1e-12, np.float32), ("inv127", 1 / 127, np.float32),
            ("zero", 0, np.float32), ("mid", 128, np.float32), ("mid_u8", 128, np.uint8), ("last", [-1], np.int64)])
    nodes: list[Any] = []
    row_scale: dict[str, str] = {}  # input name -> prefix of its quantised copy and row scale
    for i, node in enumerate(graph.node):
        if node.op_type != "MatMul" or node.input[1] not in weights:
            nodes.append(node)
            continue
        x, w = node.input[0], numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        p = f"rowq{i}_"
        col = np.abs(w).max(axis=0) / 127
        col[col == 0] = 1.0
        constant(p + "w", np.clip(np.round(w / col), -127, 127).astype(np.int8))
        constant(p + "ws", col.astype(np.float32))
        if x not in row_scale:
            row_scale[x] = p
            nodes += [  # s = max(|x|, axis=-1) / 127, as max(max x, -min x): two reads instead of a write
                helper.make_node("ReduceMax", [x, last], [p + "hi"], keepdims=1),  # and a read: 4 % of a run
                helper.make_node("ReduceMin", [x, last], [p + "lo"], keepdims=1),
                helper.make_node("Neg", [p + "lo"], [p + "nlo"]),
                helper.make_node("Max", [p + "hi", p + "nlo"], [p + "max"]),
                helper.make_node("Mul", [p + "max", inv127], [p + "s0"]),
                helper.make_node("Max", [p + "s0", eps], [p + "s"]),
                helper.make_node("Mul", [p + "s", zero], [p + "z0"]),  # zero point 128 per row, shaped as s
                helper.make_node("Add", [p + "z0", mid], [p + "z1"]),
                helper.make_node("Cast", [p + "z1"], [p + "zp"], to=TensorProto.UINT8),
                helper.make_node("QuantizeLinear", [x, p + "s", p + "zp"], [p + "xq"], axis=-1, block_size=w.shape[0])]
        q = row_scale[x]
        nodes += [helper.make_node("MatMulIntegerToFloat", [q + "xq", p + "w", one, p + "ws", mid_u8], [p + "y"],
                                   domain="com.microsoft"),
                  helper.make_node("Mul", [p + "y", q + "s"], list(node.output))]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [w for w in graph.initializer if w.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def onnx_path(model: Any, *, quantize: bool = True) -> Path:
    """The cached ONNX file of ``model`` (exported on first use; a read-only cache falls back to /tmp)."""
    name = f"{model_key(model)}-{'int8' if quantize else 'fp32'}.onnx"
    for root in (cache_root() / "onnx", Path(tempfile.gettempdir()) / "fewshot-onnx"):
        path = root / name
        if path.is_file():
            return path
        with _export_lock:
            if path.is_file():
                return path
            try:
                return export_onnx(model, path, quantize=quantize)
            except OSError:
                continue  # this cache folder is not writable: try the next one
    raise FewShotError(f"could not write the ONNX encoder to {cache_root() / 'onnx'} or the temp folder; "
                       "set FEWSHOT_CACHE to a writable folder")


class OnnxEncoder:
    """Runs an exported sentence-transformer with ONNX Runtime; same tokenizer and output as the torch model.

    Threads: batches run side by side, one ONNX Runtime thread each, on as many workers as torch has
    threads (``torch.get_num_threads()``, so one setting governs both); the caller tokenises the next batch
    meanwhile. Measured on 2 cores: 1.15x the throughput of one batch at a time on two threads, whose
    small kernels (layer norm, softmax) spend much of their time synchronising.
    Each batch is padded to a multiple of :data:`PAD_MULTIPLE` tokens and run with at least two rows (a
    single row takes other kernels), so a text's vector is the same bit for bit in any batch.
    """

    batch_size = 32
    """Texts per run: 32 beat 8, 16, 64, 128 and 256 by 3-25 % with parallel batches (a one-off comparison)."""

    def __init__(self, model: Any, *, quantize: bool = True) -> None:
        ort = _require_onnxruntime()
        self.model = model
        try:
            self.path = onnx_path(model, quantize=quantize)
        except FewShotError:
            raise
        except Exception as exc:  # the tracer and quantiser raise many kinds of errors
            raise FewShotError(f"could not export the encoder to ONNX ({type(exc).__name__}: {str(exc)[:200]}); "
                               "this model may not support the int8 encoder: run without quantize") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.workers = max(1, torch.get_num_threads())
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fewshot-onnx")

    def encode_batches(self, batches: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """The vectors of each batch of texts (unit vectors when the model ends in Normalize), in order."""
        # tokenised here, in the caller's thread (a tokenizer is not safe to share between threads), run by
        # the workers; a batch's run starts as soon as it is tokenised
        runs = [self._pool.submit(self._run, *self._arrays(batch)) for batch in batches]
        return [run.result() for run in runs]

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Vectors of ``texts``, ``batch_size`` per run (pass them length-sorted: less padding)."""
        batches = [texts[start:start + batch_size] for start in range(0, len(texts), batch_size)]
        return np.concatenate(self.encode_batches(batches)) if batches else np.empty((0, 0), np.float32)

    def _arrays(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], int]:
        """The model's inputs for ``texts``, padded (see the class docstring), and how many rows are real."""
        feats = _features(self.model, texts)
        arrays = {n: feats[n].numpy() for n in self.inputs}
        rows, length = next(iter(arrays.values())).shape
        pad = -length % PAD_MULTIPLE  # zeros: [PAD] tokens, masked out, as the tokenizer pads
        return {n: np.pad(a, ((0, 1 if rows == 1 else 0), (0, pad))) for n, a in arrays.items()}, rows

    def _run(self, arrays: dict[str, np.ndarray], rows: int) -> np.ndarray:
        return np.asarray(self.session.run(None, arrays)[0][:rows], dtype=np.float32)
