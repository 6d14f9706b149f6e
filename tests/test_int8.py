"""The int8 encoder (ONNX Runtime): close to fp32, cached on disk by weights, clear errors; the app's switch."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot import FewShotClassifier, FewShotError
from fewshot.encoder import Encoder, bundled_minilm_path

from helpers import QUERIES, SUPPORT, support_frame

pytest.importorskip("onnxruntime")
from fewshot import int8  # noqa: E402

TEXTS = [t for texts in SUPPORT.values() for t in texts] + [q for q, _ in QUERIES] + [
    "hi", "set an alarm for seven tomorrow morning please", "what's on my calendar for the rest of the week",
    "play some jazz", "how do I transfer money to my savings account without paying a fee"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A 2-layer random BERT sentence-transformer with MiniLM's tokenizer: exports in about a second."""
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models

    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=512)).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(bundled_minilm_path() / name, folder / name)
    word = models.Transformer(str(folder), max_seq_length=64)
    return SentenceTransformer(modules=[word, models.Pooling(32, "mean"), models.Normalize()], device="cpu").eval()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["minilm", "default"])
def test_int8_vectors_are_close_to_fp32(model: str) -> None:
    fp32, fast = Encoder(model), Encoder(model, quantize=True)
    a, b = fp32.encode(TEXTS), fast.encode(TEXTS)
    assert b.shape == a.shape and b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, rtol=1e-5)
    cos = (a * b).sum(axis=1)
    assert cos.mean() >= 0.99 and cos.min() >= 0.95, cos
    assert fast.describe()["quantized"] and fast.describe()["backend"] == "onnxruntime int8"
    assert fast._int8.path.is_file() and fast._int8.path.suffix == ".onnx"
    fresh = Encoder(model, quantize=True, cache_size=0)  # no cache: every call runs the model
    alone = np.concatenate([fresh.encode([t]) for t in TEXTS])
    np.testing.assert_array_equal(fresh.encode(TEXTS), alone)  # per-row scales: batch mates change no bit
    np.testing.assert_array_equal(fresh.encode(TEXTS[::-1]), alone[::-1])


@pytest.mark.slow
def test_int8_classifier_predicts_like_fp32(tmp_path: Path) -> None:
    df = support_frame()
    fp32 = FewShotClassifier("minilm").fit(df.text.tolist(), df.label.tolist())
    fast = FewShotClassifier("minilm", quantize=True).fit(df.text.tolist(), df.label.tolist())
    texts, gold = zip(*QUERIES)
    assert list(fast.predict(list(texts))) == list(gold)
    queries = TEXTS + ["my card is gone", "rain later?", "money back please", "is it hot today"]
    agree = np.mean(fast.predict(queries) == fp32.predict(queries))
    assert agree >= 0.9, agree
    np.testing.assert_allclose(fast.predict_proba(list(texts)), fp32.predict_proba(list(texts)), atol=0.1)
    fast.save(tmp_path / "clf")  # reloads as int8, reusing its own vectors; as fp32 it re-encodes them
    again = FewShotClassifier.load(tmp_path / "clf")
    assert again.encoder.quantize
    np.testing.assert_allclose(again.predict_proba(list(texts)), fast.predict_proba(list(texts)), atol=1e-5)
    plain = FewShotClassifier.load(tmp_path / "clf", quantize=False)
    np.testing.assert_allclose(plain.predict_proba(list(texts)), fp32.predict_proba(list(texts)), atol=1e-5)


def test_onnx_matches_torch_pooling_and_normalisation(tiny: object, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEWSHOT_CACHE", str(tmp_path))
    texts = sorted(TEXTS, key=len)
    ref = tiny.encode(texts, batch_size=8, normalize_embeddings=True)
    fp32 = int8.OnnxEncoder(tiny, quantize=False).encode(texts, batch_size=8)
    np.testing.assert_allclose(fp32, ref, atol=1e-4)  # same tokens, same mean pooling over the mask, same norm
    fast = int8.OnnxEncoder(tiny, quantize=True)
    q = fast.encode(texts, batch_size=8)
    assert (q * ref).sum(axis=1).mean() > 0.95
    alone = np.concatenate([fast.encode([t], batch_size=1) for t in texts])
    np.testing.assert_array_equal(q, alone)  # a text's int8 vector does not depend on its batch mates
    np.testing.assert_array_equal(fast.encode(texts[::-1], batch_size=5), q[::-1])


def test_every_weight_matmul_is_int8_with_row_scales(tiny: object, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    onnx = pytest.importorskip("onnx")
    monkeypatch.setenv("FEWSHOT_CACHE", str(tmp_path))
    graph = onnx.load(str(int8.onnx_path(tiny))).graph
    ops = [node.op_type for node in graph.node]
    weights = {w.name for w in graph.initializer if len(w.dims) == 2}
    assert not [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]  # no fp32 weight left
    assert ops.count("MatMulIntegerToFloat") == 2 * 6  # 2 layers x (query, key, value, output, FFN in, FFN out)
    assert ops.count("QuantizeLinear") == 2 * 4  # query, key and value share their input's quantisation
    blocked = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert all({a.name for a in n.attribute} >= {"axis", "block_size"} for n in blocked)  # one scale per row


def test_export_is_cached_and_keyed_by_the_weights(tiny: object, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEWSHOT_CACHE", str(tmp_path))
    first = int8.onnx_path(tiny)
    assert first.parent == tmp_path / "onnx" and first.is_file()
    stamp = first.stat().st_mtime_ns
    assert int8.onnx_path(tiny) == first and first.stat().st_mtime_ns == stamp  # not exported again
    changed = __import__("copy").deepcopy(tiny)
    with torch.no_grad():
        next(changed.parameters()).add_(0.01)
    assert int8.onnx_path(changed) != first  # other weights, other file
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == sorted([first.name, int8.onnx_path(changed).name])


def test_unwritable_cache_falls_back_to_the_temp_folder(tiny: object, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("FEWSHOT_CACHE", str(blocker))
    monkeypatch.setattr(int8.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = int8.onnx_path(tiny)
    assert path.is_file() and path.parent == tmp_path / "tmp" / "fewshot-onnx"


def test_missing_onnxruntime_is_a_clear_error(tiny: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(FewShotError, match="pip install onnxruntime onnx"):
        int8.OnnxEncoder(tiny)


@pytest.mark.slow
def test_app_switch_refits_with_the_other_encoder() -> None:
    from fewshot import ui_core as core

    state = {"rows": [[lab, t] for t, lab in support_frame().itertuples(index=False)], "options": {}}
    plain = core.fitted_classifier(state, None, quantize=False)
    assert not plain.clf.encoder.quantize
    assert core.fitted_classifier(state, plain, quantize=False) is plain  # same label set, same encoder
    fast = core.fitted_classifier(state, plain, quantize=True)
    assert fast is not plain and fast.clf.encoder.quantize and fast.clf.encoder is core.shared_encoder(True)
    assert core.fitted_classifier(state, fast, quantize=True) is fast
    assert core.int8_flag(None) is core.INT8_DEFAULT and core.int8_flag(0) is False
    with pytest.raises(FewShotError, match="fast_encoder must be true or false"):
        core.int8_flag("yes")
