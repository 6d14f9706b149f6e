"""Encoder choice: a saved classifier records its encoder and refuses another; `fewshot info --model`;
``extra_layers="auto"`` per encoder tier."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fewshot import FewShotClassifier, FewShotError
from fewshot.encoders.registry import ModelSpec
from helpers import needs_mpnet
from test_oos import TableEncoder, clusters


class NamedEncoder(TableEncoder):
    """A table encoder posing as a named model (the vectors are the same: only the record differs)."""

    def __init__(self, table, name: str, trained: str | None = None, weights: str | None = None) -> None:
        super().__init__(table)
        self.name = name
        self.spec = ModelSpec(name, f"/weights/{name}", trained)
        self.weights = weights if weights or not trained else "digest-a"

    def describe(self) -> dict:
        return {"model": self.name, "base": self.spec.base, "trained": self.spec.trained_dir, "int8": False,
                "weights": self.weights, "dim": self.dim, "extra_layers": []}


def _saved(tmp_path, name: str = "mpnet", trained: str | None = None):
    table, support, in_scope, _ = clusters(seed=2)
    clf = FewShotClassifier(encoder=NamedEncoder(table.table, name, trained), label_names=False)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    clf.save(tmp_path / "clf")
    return clf, table.table, [t for t, _ in in_scope]


def test_saved_folder_records_the_encoder(tmp_path) -> None:
    _saved(tmp_path)
    record = json.loads((tmp_path / "clf" / "config.json").read_text())["encoder"]
    assert record["model"] == "mpnet" and record["base"] == "/weights/mpnet" and record["extra_layers"] == []


def test_loading_with_another_encoder_is_refused(tmp_path) -> None:
    clf, table, texts = _saved(tmp_path)
    with pytest.raises(FewShotError, match=r"saved with the encoder 'mpnet'.*in use is 'minilm'.*reencode=True"):
        FewShotClassifier.load(tmp_path / "clf", encoder=NamedEncoder(table, "minilm"))
    same = FewShotClassifier.load(tmp_path / "clf", encoder=NamedEncoder(table, "mpnet"))
    assert list(same.predict(texts)) == list(clf.predict(texts))


def test_reencoding_with_another_encoder_on_purpose(tmp_path) -> None:
    clf, table, texts = _saved(tmp_path)
    other = NamedEncoder(table, "minilm")
    calls = []
    encode = other.encode
    other.encode = lambda t, **kw: calls.append(len(t)) or encode(t, **kw)
    loaded = FewShotClassifier.load(tmp_path / "clf", encoder=other, reencode=True)
    assert calls and calls[0] == len(clf.examples)  # the examples were encoded again, by the new encoder
    assert loaded.encoder is other and list(loaded.predict(texts)) == list(clf.predict(texts))


def test_trained_parts_count_as_another_encoder(tmp_path) -> None:
    _, table, _ = _saved(tmp_path, name="default", trained="/models/default")
    with pytest.raises(FewShotError, match="without a trained folder"):
        FewShotClassifier.load(tmp_path / "clf", encoder=NamedEncoder(table, "default"))


def test_other_trained_weights_under_one_name_count_as_another_encoder(tmp_path) -> None:
    """"default" names other weights in another release: the saved vectors must not be reused silently."""
    clf, table, texts = _saved(tmp_path, name="default", trained="/models/default")
    same = NamedEncoder(table, "default", "/models/default")
    assert list(FewShotClassifier.load(tmp_path / "clf", encoder=same).predict(texts)) == list(clf.predict(texts))
    with pytest.raises(FewShotError, match="other trained weights of the encoder 'default' .digest digest-a; now "
                                           "digest-b.*reencode=True"):
        FewShotClassifier.load(tmp_path / "clf", encoder=NamedEncoder(table, "default", "/models/default", "digest-b"))
    path = tmp_path / "clf" / "config.json"
    meta = json.loads(path.read_text())
    del meta["encoder"]["weights"]  # a save from before digests were kept
    path.write_text(json.dumps(meta))
    with pytest.raises(FewShotError, match="an earlier release's"):
        FewShotClassifier.load(tmp_path / "clf", encoder=same)
    other = NamedEncoder(table, "default", "/models/default", "digest-b")
    calls = []
    encode = other.encode
    other.encode = lambda t, **kw: calls.append(len(t)) or encode(t, **kw)
    loaded = FewShotClassifier.load(tmp_path / "clf", encoder=other, reencode=True)
    assert calls and calls[0] == len(clf.examples)  # re-encoded, not the saved index
    assert list(loaded.predict(texts)) == list(clf.predict(texts))


def test_old_saves_without_an_encoder_record_still_load(tmp_path) -> None:
    clf, table, texts = _saved(tmp_path)
    path = tmp_path / "clf" / "config.json"
    meta = json.loads(path.read_text())
    del meta["encoder"]
    path.write_text(json.dumps(meta))
    loaded = FewShotClassifier.load(tmp_path / "clf", encoder=NamedEncoder(table, "minilm"))
    assert list(loaded.predict(texts)) == list(clf.predict(texts))


@pytest.mark.slow
@needs_mpnet
def test_auto_extra_layers_is_layer_6_on_mpnet() -> None:
    from fewshot.encoders.encoder import MPNET_AUTO_EXTRA_LAYERS, Encoder

    enc = Encoder("mpnet")
    assert MPNET_AUTO_EXTRA_LAYERS == (6,) and enc.extra_layers == (6,) and enc.dim == 2 * 768
    assert Encoder("mpnet", extra_layers=[]).dim == 768
    assert FewShotClassifier("mpnet").encoder.extra_layers == (6,)  # what a save records


def test_auto_extra_layers_per_tier_without_loading() -> None:
    from fewshot.encoders import parts
    from fewshot.encoders.registry import MPNET_HUB_ID, bundled_minilm_path, is_mpnet

    assert is_mpnet(MPNET_HUB_ID) and is_mpnet(f"/anywhere/{parts.folder_name()}")
    assert not is_mpnet(str(bundled_minilm_path())) and not is_mpnet("sentence-transformers/all-MiniLM-L6-v2")


def test_int8_encoder_is_made_from_its_own_copy_of_the_weights() -> None:
    """The int8 encoder never copies the shared fp32 model (another thread may be running it): it shares no
    tensor with it, and one made while the fp32 encoder runs in another thread gives the usual vectors."""
    import threading

    from fewshot.encoders import encoder as E

    texts = ["where is my refund", "my card was stolen", "how do I reset my password", "hello"] * 3
    fp32 = E.Encoder("minilm", extra_layers=[], cache_size=0)
    made_alone = E.Encoder("minilm", int8=True, extra_layers=[], cache_size=0).encode(texts)
    shared = {t.data_ptr() for t in fp32._model.parameters()}
    assert not shared & {t.data_ptr() for t in E._load_int8(fp32.spec).model.parameters()}  # embeddings, norms
    E._load_int8.cache_clear()
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            fp32.encode(texts)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        made_meanwhile = E.Encoder("minilm", int8=True, extra_layers=[], cache_size=0)
    finally:
        stop.set()
        worker.join()
    np.testing.assert_array_equal(made_meanwhile.encode(texts), made_alone)


def test_another_model_on_purpose_takes_its_own_automatic_layers(tmp_path) -> None:
    from helpers import support_frame

    df = support_frame()
    FewShotClassifier("minilm", extra_layers=[5]).fit(df.text.tolist(), df.label.tolist()).save(tmp_path / "c")
    assert FewShotClassifier.load(tmp_path / "c").encoder.extra_layers == (5,)  # the saved choice, same model
    other = FewShotClassifier.load(tmp_path / "c", model="default")  # re-encoded on purpose: default's own "auto"
    assert other.encoder.name == "default" and other.encoder.extra_layers == (4,)
    assert other.support.vectors.shape == (len(df), other.encoder.dim)


def _bench_common():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "common.py"
    spec = importlib.util.spec_from_file_location("bench_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_one_pass_embeddings_are_the_encoders_own(tmp_path) -> None:
    """The benchmarks fill the embedding cache with one forward pass for the sentence embedding and the
    layered vector (mpnet costs 5-8x MiniLM per text); what they cache is bitwise what each encoder gives,
    under the keys :func:`fewshot.meta.data.embed_texts` reads."""
    from types import SimpleNamespace

    from fewshot.encoders.encoder import Encoder
    from fewshot.meta.data import embed_texts

    common = _bench_common()
    common.reproducible()
    texts = ["where is my refund", "my card was stolen", "how do I reset my password", "hello", "a b c d e f"]
    plain, layered = Encoder("minilm", extra_layers=(), cache_size=0), Encoder("minilm", cache_size=0)
    common.embed_once({"a": texts, "b": texts[:2]}, [plain, layered], cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 4  # two lists x two encoders
    for enc in (plain, layered):
        cached = embed_texts(texts, common._Precomputed(enc, {}), cache_dir=tmp_path)  # a miss would raise
        np.testing.assert_array_equal(cached, enc.encode(texts))
    with pytest.raises(ValueError, match="sharing one transformer"):
        common.embed_once({"a": texts}, [plain, SimpleNamespace(_model=object(), int8=False)], cache_dir=tmp_path)


def _bench_script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_write_one_result_file_per_model() -> None:
    """``--model`` picks the encoder of bench/accuracy.py and bench/oos.py; MiniLM keeps the files the docs
    have always quoted, another model gets its own."""
    from pathlib import Path

    accuracy, oos = _bench_script("accuracy"), _bench_script("oos")
    assert accuracy.base_model("default") == "minilm" and accuracy.base_model("mpnet") == "mpnet"
    assert accuracy.result_name("minilm", False) == "accuracy.json"
    assert accuracy.result_name("mpnet", False) == "accuracy_mpnet.json"
    assert accuracy.result_name("mpnet", True) == "accuracy_mpnet_quick.json"
    args = accuracy.parse_args(["--model", "mpnet"])
    assert args.base == "mpnet" and args.xfer == "mpnet-xfer-no-{dataset}" and args.out.name == "accuracy_mpnet.json"
    assert accuracy.parse_args([]).xfer == "xfer-no-{dataset}"
    assert oos.result_path(Path("r/oos.json"), "minilm") == Path("r/oos.json")
    assert oos.result_path(Path("r/oos_draws.json"), "mpnet") == Path("r/oos_draws_mpnet.json")
    assert oos.result_path(Path("r/oos.json"), "models/some-head") == Path("r/oos_some-head.json")
