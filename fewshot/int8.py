"""The int8 encoder: the sentence-transformer exported once to ONNX, int8-quantised, run by ONNX Runtime.

Why ONNX Runtime and not PyTorch dynamic quantisation: measured on the HWU64 / CLINC150 5-shot splits
(``bench/speed.py --only int8``), it keeps accuracy within half a point (PyTorch's int8 lost up to 1.1)
and halves single-text latency; batch throughput on 2 cores is on par with fp32 PyTorch, not above it. Only the weight MatMuls are
quantised (int8 weights per output channel, activations quantised at run time); the embedding tables,
pooling and normalisation stay float, so the output is the same kind of unit vector as the fp32 path.

The int8 model runs one text at a time: its activations are quantised with one scale per run, so in a
batch a text's vector would depend on its batch mates (and their padding). One text per run makes each
vector a function of its text alone (what the per-text cache assumes) and was measured as accurate as fp32.

The export (about ten seconds) is made once per model and cached on disk under
``$FEWSHOT_CACHE/onnx`` (default ``~/.cache/fewshot/onnx``), keyed by the weights' content and the
versions involved; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import FewShotError

EXPORT_VERSION = 1  # bump when the export or quantisation recipe changes (old files are then ignored)
OPSET = 17
QUANT_OPTIONS: dict[str, Any] = {"per_channel": True, "reduce_range": False, "op_types_to_quantize": ["MatMul"]}
"""reduce_range=False: VNNI/AMX CPUs take full-range int8 weights; the 7-bit range is for older CPUs."""
_export_lock = threading.Lock()


def cache_root() -> Path:
    """Where fewshot keeps files it can rebuild: ``$FEWSHOT_CACHE`` or ``~/.cache/fewshot``."""
    return Path(os.environ.get("FEWSHOT_CACHE") or Path.home() / ".cache" / "fewshot")


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
    h = hashlib.sha256(json.dumps([EXPORT_VERSION, OPSET, QUANT_OPTIONS, torch.__version__,
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
    from onnxruntime.quantization import QuantType, quantize_dynamic

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
            logging.disable(logging.WARNING)  # "consider pre-processing" advice printed on the root logger
            try:
                quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, **QUANT_OPTIONS)
            finally:
                logging.disable(logging.NOTSET)
        os.replace(out, path)
    return path


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

    Threads: ONNX Runtime uses as many as torch (``torch.get_num_threads()``), so one setting governs both.
    """

    def __init__(self, model: Any, *, quantize: bool = True) -> None:
        ort = _require_onnxruntime()
        self.model = model
        self.per_text = quantize  # see the module docstring
        try:
            self.path = onnx_path(model, quantize=quantize)
        except FewShotError:
            raise
        except Exception as exc:  # the tracer and quantiser raise many kinds of errors
            raise FewShotError(f"could not export the encoder to ONNX ({type(exc).__name__}: {str(exc)[:200]}); "
                               "this model may not support the int8 encoder: run without quantize") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit vectors of ``texts``, tokenised ``batch_size`` at a time (pass them length-sorted: less padding)."""
        out = []
        for start in range(0, len(texts), batch_size):
            feats = _features(self.model, texts[start:start + batch_size])
            arrays = {n: feats[n].numpy() for n in self.inputs}
            if not self.per_text or "attention_mask" not in feats:
                out.append(self.session.run(None, arrays)[0])
                continue
            lengths = feats["attention_mask"].sum(dim=1).tolist()
            for row, length in enumerate(lengths):  # each text alone, its padding cut off
                out.append(self.session.run(None, {n: a[row:row + 1, :length] for n, a in arrays.items()})[0])
        return np.concatenate(out).astype(np.float32, copy=False)
