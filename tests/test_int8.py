"""The int8 encoder: close to fp32, per-row quantisation, batch-independent vectors, clear errors; the app's switch."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot import FewShotClassifier, FewShotError
from fewshot.encoders import int8
from fewshot.encoders.encoder import Encoder
from fewshot.encoders.registry import bundled_minilm_path
from fewshot.errors import FewShotWarning

from helpers import QUERIES, SUPPORT, support_frame

TEXTS = [t for texts in SUPPORT.values() for t in texts] + [q for q, _ in QUERIES] + [
    "hi", "set an alarm for seven tomorrow morning please", "what's on my calendar for the rest of the week",
    "play some jazz", "how do I transfer money to my savings account without paying a fee"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A 2-layer random BERT sentence-transformer with MiniLM's tokenizer: quick to quantise and run."""
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
    fp32, fast = Encoder(model), Encoder(model, int8=True)
    a, b = fp32.encode(TEXTS), fast.encode(TEXTS)
    assert b.shape == a.shape and b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, rtol=1e-5)
    cos = (a * b).sum(axis=1)
    assert cos.mean() >= 0.99 and cos.min() >= 0.95, cos
    assert fast.describe()["int8"] and fast.describe()["backend"].startswith("torch int8")
    fresh = Encoder(model, int8=True, cache_size=0)  # no cache: every call runs the model
    alone = np.concatenate([fresh.encode([t]) for t in TEXTS])
    np.testing.assert_array_equal(fresh.encode(TEXTS), alone)  # per-row scales: batch mates change no bit
    np.testing.assert_array_equal(fresh.encode(TEXTS[::-1]), alone[::-1])


@pytest.mark.slow
def test_int8_classifier_predicts_like_fp32(tmp_path: Path) -> None:
    df = support_frame()
    fp32 = FewShotClassifier("minilm").fit(df.text.tolist(), df.label.tolist())
    fast = FewShotClassifier("minilm", int8=True).fit(df.text.tolist(), df.label.tolist())
    texts, gold = zip(*QUERIES)
    assert list(fast.predict(list(texts))) == list(gold)
    queries = TEXTS + ["my card is gone", "rain later?", "money back please", "is it hot today"]
    agree = np.mean(fast.predict(queries) == fp32.predict(queries))
    assert agree >= 0.9, agree
    np.testing.assert_allclose(fast.predict_proba(list(texts)), fp32.predict_proba(list(texts)), atol=0.1)
    fast.save(tmp_path / "clf")  # reloads as int8, reusing its own vectors; as fp32 it re-encodes them
    again = FewShotClassifier.load(tmp_path / "clf")
    assert again.encoder.int8
    np.testing.assert_allclose(again.predict_proba(list(texts)), fast.predict_proba(list(texts)), atol=1e-5)
    plain = FewShotClassifier.load(tmp_path / "clf", int8=False)
    np.testing.assert_allclose(plain.predict_proba(list(texts)), fp32.predict_proba(list(texts)), atol=1e-5)


def test_int8_copy_keeps_pooling_and_normalisation(tiny: object) -> None:
    texts = sorted(TEXTS, key=len)
    ref = tiny.encode(texts, batch_size=8, normalize_embeddings=True)
    fast = int8.Int8Encoder(tiny)
    outs = list(fast.encode_batches([texts[i:i + 8] for i in range(0, len(texts), 8)]))
    q = torch.cat([out["sentence_embedding"] for out in outs]).numpy()
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-5)  # the Normalize module still runs
    assert (q * ref).sum(axis=1).mean() > 0.99  # same tokens, same mean pooling over the mask
    assert not any(isinstance(m, int8.Int8Linear) for m in tiny.modules())  # the fp32 model is left as it was


def test_every_linear_becomes_int8_and_other_weights_are_shared(tiny: object) -> None:
    quantized = int8.quantize_model(tiny)
    linears = [m for m in tiny.modules() if isinstance(m, torch.nn.Linear)]
    assert not [m for m in quantized.modules() if isinstance(m, torch.nn.Linear)]
    fast = [m for m in quantized.modules() if isinstance(m, int8.Int8Linear)]
    assert len(fast) == len(linears) == 2 * 6 + 1  # 2 layers x (query, key, value, output, FFN in, FFN out), pooler
    word = tiny[0].auto_model.embeddings.word_embeddings.weight
    assert quantized[0].auto_model.embeddings.word_embeddings.weight is word  # shared, not copied



def test_weight_quantisation_is_per_output_and_exact() -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(40, 24, generator=g) * torch.logspace(-6, 3, 40)[:, None]  # rows on very different scales
    w[5] = 0.0  # an all-zero output: no division by zero
    q, scale = int8.quantize_weight(w)
    assert q.dtype == torch.int8 and scale.shape == (40,)
    want_scale = (w.abs().amax(dim=1) / 127).clamp_min(1e-30)  # the textbook formula, six passes
    assert torch.equal(scale, want_scale)
    assert torch.equal(q, torch.round(w / want_scale[:, None]).clamp(-127, 127).to(torch.int8))
    assert (q[5] == 0).all() and (q.int().abs().amax(dim=1)[torch.arange(40) != 5] == 127).all()


def test_layers_quantised_on_workers_are_the_same_and_the_fp32_model_untouched(tiny: object) -> None:
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    alone = int8.quantize_model(tiny)
    pool = int8._one_thread_pool(2)
    try:
        pooled = int8.quantize_model(tiny, pool)
    finally:
        pool.shutdown()
    features = int8.model_inputs(tiny, ["one text", "and another one"])
    with torch.inference_mode():
        a, b = (m(dict(features))["sentence_embedding"] for m in (alone, pooled))
    assert torch.equal(a, b)
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())  # nothing written into it
    assert len([m for m in tiny.modules() if isinstance(m, torch.nn.Linear)]) == 13  # its layers are its own still

def test_query_key_and_value_share_one_quantisation(tiny: object, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    real = int8._row_quantizer

    def counting(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(tuple(x.shape))
        return real(x)

    fast = int8.Int8Encoder(tiny)
    monkeypatch.setattr(int8, "_row_quantizer", counting)
    list(fast.encode_batches([["one text", "and another one"]]))
    assert len(calls) == 2 * 4 + 1  # per layer: query/key/value once, attention output, FFN in, FFN out; pooler


def test_row_quantisation_is_per_row_and_close() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 96, generator=g) * torch.logspace(-3, 2, 50)[:, None]  # rows on very different scales
    x[7] = 0.0  # an all-zero row: no division by zero
    x[3, 5] = 400.0  # an outlier moves its own row's scale only
    q, s = int8.quantize_rows(x)
    assert q.dtype == torch.uint8 and s.shape == (50, 1) and torch.isfinite(s).all()
    back = (q.float() - int8.MID) * s
    assert ((back - x).abs() <= s / 2 * 1.0001).all()  # rounding error at most half a step, every row
    assert ((q.int() - int8.MID).abs().amax(dim=1)[torch.arange(50) != 7] == 127).all()  # each row uses the grid
    assert (q[7] == int8.MID).all()
    alone = [int8.quantize_rows(x[i:i + 1]) for i in range(50)]
    assert torch.equal(torch.cat([a for a, _ in alone]), q) and torch.equal(torch.cat([b for _, b in alone]), s)


def test_compiled_quantiser_gives_the_same_bytes_or_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(200, 384) * 3
    compiled = int8._RowQuantizer(compile_after=0)
    with torch.inference_mode():
        got = compiled(x)
    want = int8.quantize_rows(x)
    assert all(torch.equal(a, b) for a, b in zip(got, want))

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(int8.torch, "compile", broken)
    fallback = int8._RowQuantizer(compile_after=0)
    with pytest.warns(FewShotWarning, match="torch.compile is unavailable"):
        got = fallback(x)
    assert fallback._fn is int8.quantize_rows and all(torch.equal(a, b) for a, b in zip(got, want))
    monkeypatch.setenv("FEWSHOT_COMPILE", "0")
    off = int8._RowQuantizer(compile_after=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # switched off: not even tried, so no warning
        assert all(torch.equal(a, b) for a, b in zip(off(x), want))


def test_quantiser_compiles_only_once_a_run_is_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[int] = []

    def broken(*args: object, **kwargs: object) -> object:
        tried.append(1)
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(int8.torch, "compile", broken)
    quantizer = int8._RowQuantizer(compile_after=3 * 200 * 64 + 1)
    big, small = torch.randn(200, 64), torch.randn(10, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing tried yet, so no warning
        for x in (big, small, small, big, big):  # small batches do not count: they never run compiled
            quantizer(x)
    assert not tried and quantizer._fn is None
    with pytest.warns(FewShotWarning, match="torch.compile is unavailable"):
        got = quantizer(big)  # past three big batches: compiling is tried, once
    assert tried == [1] and all(torch.equal(a, b) for a, b in zip(got, int8.quantize_rows(big)))
    quantizer(big)
    assert tried == [1]

def test_gemm_backends_compute_the_same_numbers() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(3, 7, 64)
    with torch.inference_mode():
        outs = {}
        for backend in ("onednn", "int_mm"):
            try:
                outs[backend] = int8.Int8Linear(linear, backend)(x)
            except (RuntimeError, NotImplementedError, AttributeError):
                continue  # not in this torch build
        ref = linear(x)
    assert int8.gemm_backend() in outs and outs[int8.gemm_backend()].shape == (3, 7, 48)
    for out in outs.values():
        assert (out - ref).abs().max() < 0.02 * ref.abs().max()
    if len(outs) == 2:
        assert torch.equal(outs["onednn"], outs["int_mm"])  # the same integers, scaled the same way


def test_a_kernel_whose_rows_change_with_the_batch_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    real = int8._onednn

    def by_batch(xq: torch.Tensor, *args: object) -> torch.Tensor:  # exact for big batches only, like a kernel
        out = real(xq, *args)                                          # that blocks differently by row count
        return out if xq.shape[0] > 8 else out.nextafter(out + 1)

    monkeypatch.setattr(int8, "_onednn", by_batch)
    int8.gemm_backend.cache_clear()
    try:
        assert int8.gemm_backend() == "int_mm"
    except FewShotError:
        pytest.skip("no torch._int_mm in this build")
    finally:
        int8.gemm_backend.cache_clear()


def test_workers_run_on_one_thread_and_leave_the_caller_alone() -> None:
    before = torch.get_num_threads()
    pool = int8._one_thread_pool(2)
    try:
        assert [pool.submit(torch.get_num_threads).result() for _ in range(4)] == [1] * 4
        assert torch.get_num_threads() == before
    finally:
        pool.shutdown()


def test_no_int8_kernel_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: object, **kwargs: object) -> object:
        raise RuntimeError("not compiled with this kernel")

    monkeypatch.setattr(int8, "_onednn", missing)
    monkeypatch.setattr(int8.torch, "_int_mm", missing)
    int8.gemm_backend.cache_clear()
    try:
        with pytest.raises(FewShotError, match="run without int8"):
            int8.gemm_backend()
    finally:
        int8.gemm_backend.cache_clear()


@pytest.mark.slow
def test_app_switch_refits_with_the_other_encoder() -> None:
    pytest.importorskip("gradio")
    from fewshot.app import warmup
    from fewshot.app import session_classifier as sc

    state = {"rows": [[lab, t] for t, lab in support_frame().itertuples(index=False)], "options": {}}
    plain = sc.fitted_classifier(state, None, int8=False)
    assert not plain.clf.encoder.int8
    assert sc.fitted_classifier(state, plain, int8=False) is plain  # same label set, same encoder
    fast = sc.fitted_classifier(state, plain, int8=True)
    assert fast is not plain and fast.clf.encoder.int8 and fast.clf.encoder is warmup.shared_encoder(True)
    assert sc.fitted_classifier(state, fast, int8=True) is fast
    assert sc.int8_flag(None) is warmup.INT8_DEFAULT and sc.int8_flag(0) is False
    with pytest.raises(FewShotError, match="int8 must be true or false"):
        sc.int8_flag("yes")
