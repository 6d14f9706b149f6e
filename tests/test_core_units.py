"""Unit tests of the pieces under the classifier: index, matching rules, encoder resolution, CSV helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fewshot import FewShotClassifier, FewShotError
from fewshot.io.formulas import neutralize_formulas
from fewshot.io.tables import TEXT_COLUMNS, find_column, read_table
from fewshot.encoders.encoder import Encoder
from fewshot.encoders.registry import BASE_MODEL, bundled_minilm_path, resolve_model
from fewshot.support import SupportIndex
from fewshot.rules import attention_probs, fit_prototype_head, l2_normalize, prototypes, softmax

ROOT = Path(__file__).resolve().parents[1]


def unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    return l2_normalize(rng.normal(size=(n, d))).astype(np.float32)


def test_index_add_search_remove_save_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = unit(rng, 20)
    idx = SupportIndex(8)
    idx.add(np.arange(100, 120), vecs)
    sims, ids = idx.search(vecs[:3], k=1)
    assert ids[:, 0].tolist() == [100, 101, 102]
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)
    assert idx.remove(np.array([100, 101])) == 2 and len(idx) == 18
    _, ids = idx.search(vecs[:1], k=18)
    assert 100 not in ids[0] and 101 not in ids[0]
    idx.save(tmp_path / "i.faiss")
    back = SupportIndex.load(tmp_path / "i.faiss")
    assert len(back) == 18
    np.testing.assert_allclose(back.vectors(np.array([105])), vecs[5:6], atol=1e-6)
    with pytest.raises(FewShotError, match=r"shape \(n, 8\)"):
        idx.search(np.zeros((1, 3), dtype=np.float32), k=1)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(2, 5), st.floats(0.01, 1.0), st.integers(0, 10_000))
def test_attention_probs_are_a_distribution(k: int, n_classes: int, temperature: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sims = rng.uniform(-1, 1, size=(3, k))
    labels = rng.integers(0, n_classes, size=(3, k))
    labels[0, -1] = -1 if k > 1 else labels[0, -1]  # FAISS pads missing neighbours with -1
    probs, attention = attention_probs(sims, labels, n_classes, temperature)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-6)
    assert (probs >= 0).all()


def test_attention_favours_the_most_similar_label() -> None:
    sims = np.array([[0.9, 0.5, 0.4]])
    probs, _ = attention_probs(sims, np.array([[1, 0, 0]]), 2, temperature=0.05)
    assert probs[0, 1] > 0.99


def test_prototypes_and_head() -> None:
    rng = np.random.default_rng(1)
    centers = unit(rng, 3, 16)
    x = l2_normalize(np.repeat(centers, 5, axis=0) + 0.3 * rng.normal(size=(15, 16))).astype(np.float32)
    y = np.repeat(np.arange(3), 5)
    protos = prototypes(x, y, 3)
    np.testing.assert_allclose(np.linalg.norm(protos, axis=1), 1.0, rtol=1e-5)
    head = fit_prototype_head(x, y, 3)
    assert (head.predict_proba(x).argmax(axis=1) == y).all()
    proto_rule = fit_prototype_head(x, y, 3, steps=0)
    assert proto_rule.weight.shape == (3, 16)
    again = fit_prototype_head(x, y, 3)
    np.testing.assert_array_equal(head.weight, again.weight)  # deterministic


def test_softmax_and_l2_normalize() -> None:
    p = softmax(np.array([[1000.0, 1000.0, -np.inf], [0.0, np.log(3.0), 0.0]]))  # no overflow; -inf: no mass
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0], [0.2, 0.6, 0.2]])
    np.testing.assert_allclose(l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0.0, 0.0]])


def test_the_numpy_helpers_load_no_torch() -> None:
    code = ("import sys, fewshot.rules, fewshot.diagnostics, fewshot.multilabel.core; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_loading_an_encoder_leaves_the_hugging_face_progress_bars_as_they_were() -> None:
    code = (
        "import json\n"
        "from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars\n"
        "from transformers.utils import logging\n"
        "from fewshot.encoders.encoder import Encoder, open_sentence_transformer\n"
        "from fewshot.encoders.registry import bundled_minilm_path\n"
        "state = lambda: [logging.is_progress_bar_enabled(), are_progress_bars_disabled()]\n"
        "out = [state()]\n"
        "Encoder('minilm')\n"
        "out.append(state())\n"
        "disable_progress_bars()  # the user turns the hub's bars off, transformers' stay on\n"
        "out.append(state())\n"
        "open_sentence_transformer(str(bundled_minilm_path()))\n"
        "out.append(state())\n"
        "print(json.dumps(out))\n")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}  # the bars' own switch
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    before, after, user_off, after_user_off = json.loads(res.stdout.strip().splitlines()[-1])
    assert before == after == [True, False]
    assert user_off == after_user_off == [True, True]
    assert "Loading weights" not in res.stderr


def test_model_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_model(BASE_MODEL).base == str(bundled_minilm_path())
    monkeypatch.setenv("FEWSHOT_MODEL", BASE_MODEL)
    assert resolve_model(None).name == BASE_MODEL
    assert resolve_model(str(tmp_path)).base == str(tmp_path.resolve())
    with pytest.raises(FewShotError, match="was not found"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(FewShotError, match="could not load the encoder"):
        Encoder(str(tmp_path))  # a folder that holds no model


def test_hub_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """hub_reachable: False offline or when nothing listens at the endpoint, True when something does or
    behind a proxy."""
    import socket

    from huggingface_hub import constants

    from fewshot.encoders.registry import PROXY_VARS, hub_reachable

    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        assert hub_reachable()
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        assert not hub_reachable()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert not hub_reachable()  # the port is closed now
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert hub_reachable()


def test_hub_id_without_hub_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub id that is not cached, with no hub to reach, is refused in seconds and says why (before: over a
    minute of retries per file)."""
    import time

    from fewshot.encoders import encoder as encoder_module

    monkeypatch.setattr(encoder_module, "hub_reachable", lambda: False)
    start = time.perf_counter()
    with pytest.raises(FewShotError, match="the hub cannot be reached"):
        encoder_module._private_model("someone/no-such-model-xyz")
    assert time.perf_counter() - start < 20


def test_encoder_tells_which_texts_are_longer_than_it_reads() -> None:
    enc = Encoder(BASE_MODEL)
    assert enc.max_tokens == 256
    # 254 one-piece words + [CLS] and [SEP] fit exactly; one more does not
    np.testing.assert_array_equal(enc.over_length(["a short one", "a " * 254, "a " * 255]), [False, False, True])
    assert enc.over_length([]).shape == (0,)


def test_encoder_normalises_and_caches() -> None:
    enc = Encoder(BASE_MODEL)
    a = enc.encode(["hello world", "a much longer sentence about refunds and cards", "hello world"])
    assert a.shape == (3, 768) and a.dtype == np.float32  # sentence embedding + mean-pooled layer 4
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a[0], a[2])
    calls: list[tuple[int, int]] = []
    enc.encode(["hello world"], progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 0)]  # cached: nothing left to encode


def test_extra_layers_append_the_mean_pooled_layer_states() -> None:
    texts = ["hello world", "a much longer sentence about refunds and cards", "block my card"]
    enc, plain = Encoder(BASE_MODEL), Encoder(BASE_MODEL, extra_layers=())
    assert enc.extra_layers == (4,) and enc.dim == 768 and plain.extra_layers == () and plain.dim == 384
    st = plain._model
    model, tokenizer = st[0].auto_model, st.tokenizer
    with torch.inference_mode():  # by hand: layer 4's states averaged over the real tokens
        inputs = tokenizer(texts, padding=True, return_tensors="pt")
        states = model(**inputs, output_hidden_states=True).hidden_states
        mask = inputs["attention_mask"][..., None].float()
        layer4 = torch.nn.functional.normalize((states[4] * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    expected = np.hstack([plain.encode(texts), layer4]) / np.sqrt(2)
    np.testing.assert_allclose(enc.encode(texts), expected, atol=1e-5)
    two = Encoder(BASE_MODEL, extra_layers=[2, 4])
    assert two.dim == 3 * 384 and two.describe()["extra_layers"] == [2, 4]
    np.testing.assert_allclose(np.linalg.norm(two.encode(texts), axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("bad", [[6], [-1], [4, 4], "all", [None]])
def test_extra_layers_that_the_model_lacks_are_refused(bad: object) -> None:
    with pytest.raises(FewShotError, match="extra_layers"):
        Encoder(BASE_MODEL, extra_layers=bad)


def test_read_table_and_formula_neutralisation(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('text,label\n"hello, ""you""",a\n=1+1,b\n')
    df = read_table(path, ["text", "label"])
    assert df["text"].tolist() == ['hello, "you"', "=1+1"]
    cells = ["=SUM(A1)", "+1", "-2", "@x", "fine", "\tx", "-1+1", "-2.311", "-inf", "-1_000", "+cmd|' /C calc'!A0"]
    safe = neutralize_formulas(pd.DataFrame({"x": cells, "n": range(len(cells))}))
    assert safe["x"].tolist() == ["'=SUM(A1)", "+1", "-2", "'@x", "fine", "'\tx", "'-1+1", "-2.311", "-inf",
                                  "'-1_000", "'+cmd|' /C calc'!A0"]  # plain numbers (scores) stay numbers
    assert safe["n"].tolist() == list(range(len(cells)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["text", "Text", " TEXT ", "sentence", "Utterance", "id", "label", "notes"]),
                min_size=1, max_size=5, unique=True))
def test_find_column_prefers_the_exact_name_then_case_then_the_likely_names(columns: list[str]) -> None:
    """The exact name wins; else the same name in other case or spacing; else the first likely name in
    TEXT_COLUMNS' order; else an error that lists the columns."""
    plain = [c.strip().lower() for c in columns]
    try:
        found = find_column("f.csv", columns, None, TEXT_COLUMNS, "hint")
    except FewShotError as exc:
        assert not set(plain) & set(TEXT_COLUMNS) and str(columns) in str(exc) and str(exc).endswith("hint")
        return
    assert found in columns
    if "text" in columns:
        assert found == "text"
    else:
        assert plain[columns.index(found)] == next(p for p in TEXT_COLUMNS if p in plain)
    chosen = columns[0].strip().upper()  # a chosen name matches whatever its case
    assert find_column("f.csv", columns, chosen, TEXT_COLUMNS, "hint").strip().upper() == chosen


def test_read_labelled_table_finds_the_columns_and_trims_labels(tmp_path: Path) -> None:
    """What `fewshot train` reads: columns named like text and label, labels without stray spaces; a chosen
    column that is missing is named."""
    from fewshot.meta.data import read_labelled

    path = tmp_path / "train.csv"
    pd.DataFrame({"Intent": ["refund ", " refund", "lost  card"], "Sentence": ["a", "b", "c"]}).to_csv(path,
                                                                                                      index=False)
    assert read_labelled([path]) == (["a", "b", "c"], ["refund", "refund", "lost card"])
    with pytest.raises(FewShotError, match="has no column 'utterance'.*--text-column"):
        read_labelled([path], text_column="utterance")


def test_ivf_index_recall_removal_and_auto_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    import fewshot.support as index_module

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(20, 16)).astype(np.float32)
    x = l2_normalize(centres[rng.integers(0, 20, 4000)] + 0.3 * rng.normal(size=(4000, 16))).astype(np.float32)
    exact, ivf = SupportIndex(16, kind="exact"), SupportIndex(16, kind="ivf")
    exact.add(np.arange(4000), x)
    ivf.add(np.arange(4000), x)
    assert ivf.approximate and not exact.approximate
    _, truth = exact.search(x[:50], 10)
    _, found = ivf.search(x[:50], 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.9
    assert ivf.remove(np.array([0, 1, 2])) == 3 and len(ivf) == 3997
    assert 0 not in ivf.search(x[:1], 5)[1][0]
    monkeypatch.setattr(index_module, "APPROX_ABOVE", 1000)
    auto = SupportIndex(16)
    auto.add(np.arange(900), x[:900])
    assert not auto.approximate
    auto.add(np.arange(900, 1100), x[900:1100])
    assert auto.approximate and len(auto) == 1100
    np.testing.assert_allclose(auto.vectors(np.array([950])), x[950:951], atol=1e-6)


def test_encoder_is_safe_across_threads() -> None:
    """App sessions share one encoder: concurrent encodes (token counting included) neither fail nor change
    a text's vector (the model's tokenizer settings were once changed under another thread's feet)."""
    from concurrent.futures import ThreadPoolExecutor

    enc = Encoder("minilm", cache_size=0)
    batches = [[f"message {i} about topic {j} " + "word " * (i % 23) for i in range(40)] for j in range(8)]
    expected = [enc.encode(b) for b in batches]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(enc.encode, batches * 2))
    for want, have in zip(expected * 2, got):
        np.testing.assert_array_equal(want, have)


def test_fitted_head_does_not_depend_on_torch_threads() -> None:
    """A Ray actor (1 thread) refits the classifier it is sent; its confidences must match the local
    engine's (all cores) bit for bit. Big enough (64 labels x 5 x 384) for torch to split its sums."""
    from test_oos import TableEncoder

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(64, 384))
    texts = [f"label{c} text{i}" for c in range(64) for i in range(8)]
    table = {t: (v / np.linalg.norm(v)).astype(np.float32)
             for t, v in zip(texts, np.repeat(centres, 8, axis=0) + rng.normal(size=(len(texts), 384)))}
    support = [t for t in texts if int(t.split("text")[1]) < 5]
    queries = [t for t in texts if t not in support]
    runs = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            clf = FewShotClassifier(encoder=TableEncoder(table), label_names=False, auto_unknown=True)
            clf.fit(support, [t.split()[0] for t in support])
            runs.append((clf.predict_proba(queries), clf.auto_threshold_))
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert torch.get_num_threads() == before  # the fit restored the setting


def test_mpnet_name_uses_the_part_packages_or_the_hub_on_request(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from fewshot.encoders import parts
    from fewshot.encoders.registry import MPNET_HUB_ID, is_mpnet

    monkeypatch.setattr(parts, "mpnet_folder", lambda: tmp_path)  # the parts are installed: their assembled folder
    assert resolve_model("mpnet").base == str(tmp_path)

    def missing() -> None:
        raise parts.MissingPartsError('all-mpnet-base-v2 needs its parts: pip install "fewshot[mpnet]"')

    monkeypatch.setattr(parts, "mpnet_folder", missing)
    monkeypatch.delenv(parts.ALLOW_DOWNLOAD_ENV, raising=False)
    with pytest.raises(FewShotError, match=r"fewshot\[mpnet\]"):  # nothing is downloaded unless asked for
        resolve_model("mpnet")
    monkeypatch.setenv(parts.ALLOW_DOWNLOAD_ENV, "1")
    assert resolve_model("mpnet").base == MPNET_HUB_ID
    assert is_mpnet(MPNET_HUB_ID) and is_mpnet(str(tmp_path / parts.folder_name()))
    assert not is_mpnet(str(bundled_minilm_path()))


def test_label_frame_is_the_one_output_format() -> None:
    from fewshot.io.output import OUTPUT_COLUMNS, label_frame, output_names

    class Stub:
        classes_ = np.array(["a", "b", "c", "d"], dtype=object)

        def predict_with_scores(self, texts, *, progress=None):
            self.seen = list(texts)
            probs = np.tile([0.1, 0.6, 0.25, 0.05], (len(texts), 1))
            return np.array(["b", "unknown"][:len(texts)], dtype=object), probs, np.array([1.23456, -np.inf])

    stub = Stub()
    df = pd.DataFrame({"id": ["1", "2", "3"], "text": ["first text", "  ", "third text"]})
    out = label_frame(stub, df, "text", max_chars=5)
    assert list(out.columns) == ["id", "text", *OUTPUT_COLUMNS] and stub.seen == ["first", "third"]
    assert out["label"].tolist() == ["b", "", "unknown"]  # a blank text stays unlabelled
    assert out["confidence"].tolist() == ["0.6000", "", "0.6000"]
    assert out["top_3"].tolist()[0] == "b 0.60; c 0.25; a 0.10"
    assert out["in_scope_score"].tolist() == ["1.235", "", "-inf"]
    assert output_names(["text", "confidence"]) == tuple("predicted_" + c for c in OUTPUT_COLUMNS)
    assert output_names(["Text", "Label "]) == tuple("predicted_" + c for c in OUTPUT_COLUMNS)  # case aside
    assert output_names(["text", "labelled"]) == OUTPUT_COLUMNS
    with pytest.raises(FewShotError, match="no column 'body'"):
        label_frame(stub, df, "body")
    missing = pd.DataFrame({"text": ["first text", None, np.nan, "third text"]})  # empty cells as pandas reads them
    out = label_frame(stub, missing, "text")
    assert stub.seen == ["first text", "third text"] and out["label"].tolist() == ["b", "", "", "unknown"]


def test_over_length_rows_is_one_rule_for_every_surface() -> None:
    """Blank cells count as empty texts; a multi-label classifier (which also reads each half of a text) is never
    said to cut one, and its encoder is not asked."""
    from types import SimpleNamespace

    import pandas as pd

    from fewshot.io.output import over_length_rows

    asked: list[list[str]] = []

    def over_length(texts: list[str]) -> np.ndarray:
        asked.append(texts)
        return np.array([len(t) > 5 for t in texts])

    encoder = SimpleNamespace(over_length=over_length)
    texts = pd.Series(["short", None, "a longer one"])
    single = SimpleNamespace(config=SimpleNamespace(multi_label=False), encoder=encoder)
    np.testing.assert_array_equal(over_length_rows(single, texts), [False, False, True])
    assert asked == [["short", "", "a longer one"]]
    multi = SimpleNamespace(config=SimpleNamespace(multi_label=True), encoder=encoder)
    np.testing.assert_array_equal(over_length_rows(multi, texts), [False, False, False])
    assert len(asked) == 1


def test_label_names_spelled_two_ways() -> None:
    from fewshot.text import label_key, same_name_as

    assert label_key("Lost card") == label_key("lost_card") == label_key(" lost-card ") == "lost card"
    assert same_name_as("Refund", ["billing", "refund"]) == "refund"
    assert same_name_as("refund", ["refund", "billing"]) is None  # itself does not count
    assert same_name_as("refunds", ["refund"]) is None


def test_answer_counts_and_the_line_that_says_them() -> None:
    from collections import Counter

    import pandas as pd

    from fewshot.io.output import answer_counts, answers_line

    assert answer_counts(pd.Series(["b", "", "a", "b", None, "unknown"])) == Counter({"b": 2, "a": 1, "unknown": 1})
    assert answer_counts(pd.Series(["a; b", "b", ""]), multi_label=True) == Counter({"b": 2, "a": 1})
    counts = Counter({"refund": 1204, "lost_card": 980, "unknown": 37, "billing": 980})
    assert answers_line(counts) == "answers: unknown 37 · refund 1,204 · billing 980 · lost_card 980"
    assert answers_line(counts, shown=2) == "answers: unknown 37 · refund 1,204 · 2 more label(s)"
