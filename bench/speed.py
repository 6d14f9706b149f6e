"""Speed and scale of fewshot, measured side by side in one run (compare ratios, not absolutes).

    python bench/speed.py [--quick] [--data ../shared/data] [--model minilm|default|mpnet|FOLDER]
                          [--only e2e|int8|latency|index|memory|encoder|pair] [--against minilm]

Measures: raw SentenceTransformer.encode vs end-to-end `fewshot classify` (overhead ratio); the int8
encoder vs fp32 (throughput on real HWU64/CLINC150 test texts, embedding cosine, accuracy on the HWU64 /
CLINC150 5-shot splits for "minilm" and "default");
single-text predict latency through the Python API and through the app's HTTP API (gradio_client, fp32
and int8); seconds from examples to a ready classifier; exact vs IVF support index (ms/query, recall@10,
memory); peak memory of `fewshot classify` on small vs large CSVs. Prints a table, writes
bench/results/speed.json.

``--only encoder`` measures one encoder (``--model``) fp32 against int8, everything interleaved in one run:
encoder throughput, one-text latency, fit time for 77 labels x 5 examples, and end-to-end `fewshot classify`
with 2 threads (``--int8`` or not), on a large and on a small input so that the fixed start-up cost (loading,
quantising) and the per-text rate can be told apart. Writes bench/results/speed_encoder_<model>.json. The
machine's load average (``os.getloadavg``) is recorded before and after each part: on a shared machine
only the ratios within one run mean anything.

``--only pair`` measures ``--model`` against ``--against`` (default ``minilm``), interleaved: encoder
throughput fp32 and int8, one-text latency and end-to-end `fewshot classify` (the shipped default, whose
trained layers load over MiniLM-L6, against the frozen MiniLM-L6). Writes
bench/results/speed_pair_<model>_<against>.json.
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py
from common import ROOT, parser, reproducible, set_threads, write_json  # noqa: E402

WORDS = ("card refund rain money stolen sunny bank order cold lost flight hotel alarm music weather song "
         "transfer balance pin late delivery parcel cancel booking taxi train ticket price stock news").split()


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(n)]


def support_frame(n: int, n_labels: int = 20, seed: int = 0) -> pd.DataFrame:
    texts = synthetic_texts(n, seed)
    return pd.DataFrame({"text": texts, "label": [f"label_{i % n_labels}" for i in range(n)]})


def encode_vs_classify(n: int, tmp: Path) -> dict[str, Any]:
    """Raw fp32 encode throughput vs `fewshot classify` on the same unique texts (fresh caches)."""
    from sentence_transformers import SentenceTransformer

    from fewshot.cli import main
    from fewshot.encoders.registry import bundled_minilm_path

    texts = synthetic_texts(n, seed=1)
    st = SentenceTransformer(str(bundled_minilm_path()), device="cpu")
    st.encode(texts[:64])  # warm up
    start = time.perf_counter()
    st.encode(texts, batch_size=64, normalize_embeddings=True)
    raw = n / (time.perf_counter() - start)
    support_frame(100).to_csv(tmp / "support.csv", index=False)
    pd.DataFrame({"id": range(n), "text": texts}).to_csv(tmp / "in.csv", index=False)  # the very same texts
    from fewshot.classifier import FewShotClassifier

    FewShotClassifier("minilm")  # load weights outside the timed part, as a running app has them
    os.environ["FEWSHOT_NO_PROGRESS"] = "1"
    start = time.perf_counter()
    main(["classify", "--support", str(tmp / "support.csv"), "--input", str(tmp / "in.csv"),
          "--output", str(tmp / "out.csv"), "--model", "minilm"])
    end_to_end = n / (time.perf_counter() - start)
    return {"texts": n, "raw_encode_per_s": raw, "classify_per_s": end_to_end, "ratio": end_to_end / raw}


def real_texts(data: Path | None, n: int) -> list[str]:
    """``n`` real texts: the HWU64 test split, then CLINC150's (synthetic ones when the data is absent)."""
    if data is None:
        return synthetic_texts(n, seed=2)
    texts = pd.read_csv(data / "hwu64" / "test.csv").text.tolist()
    texts += pd.read_csv(data / "clinc150" / "test.csv").text.tolist()
    return texts[:n]


def int8_vs_fp32(data: Path | None, n: int, rounds: int, accuracy: bool, model: str = "minilm") -> dict[str, Any]:
    """int8 encoder vs fp32 (both PyTorch, ``Encoder.encode``): texts/s, cosine, 5-shot accuracy.

    The encoders take turns for ``rounds`` rounds on the same texts (fresh caches), so machine load hits
    them alike; the ratios are the medians of the per-round ratios. ``int8_unfused`` is the int8 encoder
    with its row quantiser run as separate PyTorch ops (what runs where ``torch.compile`` does not).
    Threads: the library's (and the app's) setting, torch's default.
    """
    import torch

    from fewshot import FewShotClassifier
    from fewshot.encoders import int8 as int8_module
    from fewshot.encoders.encoder import Encoder

    texts = real_texts(data, n)
    fp32, int8 = Encoder(model, cache_size=0), Encoder(model, int8=True, cache_size=0)
    quantizer = int8_module._row_quantizer

    def unfused(t: list[str]) -> None:
        quantizer._fn = int8_module.quantize_rows
        try:
            int8.encode(t)
        finally:
            quantizer._fn = fused

    ordered = sorted(texts, key=len)
    # "int8": the row quantiser compiled from the start, as it runs once a long run has repaid compiling
    # (fewshot.encoders.int8._RowQuantizer); "int8_unfused": the plain function, as a short run has it
    after, quantizer.compile_after = quantizer.compile_after, 0
    cpu = time.process_time()
    quantizer(torch.randn(quantizer.small, fp32.dim))  # compiles here (its CPU cost is what a short run saves)
    compile_cpu = time.process_time() - cpu
    quantizer.compile_after = after
    fused = quantizer._fn
    runs = {"torch_fp32": lambda t: fp32.encode(t), "int8": lambda t: int8.encode(t), "int8_unfused": unfused}
    for run in runs.values():
        run(texts[:64])  # warm up
    per_s: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run(texts)
            per_s[name].append(len(texts) / (time.perf_counter() - start))
    out: dict[str, Any] = {"model": model, "texts": len(texts),
                           "source": "hwu64+clinc150 test" if data else "synthetic",
                           "threads": torch.get_num_threads(), "rounds": rounds, "per_s": per_s,
                           "backend": int8.describe()["backend"],
                           "quantiser_compiled": fused not in (None, int8_module.quantize_rows),
                           "compile_cpu_seconds": compile_cpu}
    for name in ("int8", "int8_unfused"):
        out[f"{name}_vs_torch_fp32"] = float(np.median([a / b for a, b in zip(per_s[name], per_s["torch_fp32"])]))
    out["throughput_ratio"] = out["int8_vs_torch_fp32"]
    ref = fp32.encode(ordered)
    cos = (ref * int8.encode(ordered)).sum(axis=1)
    out["cosine_int8"] = {"mean": float(cos.mean()), "p01": float(np.quantile(cos, 0.01)), "min": float(cos.min())}
    if accuracy and data is not None:
        sets = {name: (pd.read_csv(data / name / "train_5.csv"), pd.read_csv(data / name / "test.csv"))
                for name in ("hwu64", "clinc150")}
        for model in ("minilm", "default") if model in ("minilm", "default") else (model,):
            for use_int8 in (False, True):
                enc = Encoder(model, int8=use_int8)  # one per model and backend: each text encoded once
                for name, (sup, test) in sets.items():
                    clf = FewShotClassifier(encoder=enc, int8=use_int8).fit(sup.text.tolist(), sup.label.tolist())
                    acc = float((clf.predict(test.text.tolist()) == test.label.to_numpy()).mean())
                    out[f"{model}_{name}_5shot_{'int8' if use_int8 else 'fp32'}"] = acc
            for name in sets:
                key = f"{model}_{name}_5shot"
                out[f"{key}_change_points"] = 100 * (out[f"{key}_int8"] - out[f"{key}_fp32"])
    return out


def load_average() -> list[float]:
    """The machine's 1-, 5- and 15-minute load averages (what else was running: other jobs slow both sides)."""
    return [round(x, 2) for x in os.getloadavg()]


def data_folder(args: Any) -> Path | None:
    """``--data`` when it holds the datasets, else None (the parts then use synthetic texts)."""
    return Path(args.data) if (Path(args.data) / "hwu64").is_dir() else None


def in_turns(items: list[Any], round_: int) -> list[Any]:
    """``items`` in order on even rounds, reversed on odd ones (ABBA): none always goes first."""
    return items if round_ % 2 == 0 else items[::-1]


def rerun_command(args: Any, head: list[str], if_given: tuple[str, ...]) -> str:
    """The ``bench/speed.py`` command line of a part: ``head``, ``--quick``, the ``if_given`` flags that were set,
    and the `fewshot classify` sizes (not with ``--quick``, which fixes them)."""
    flags = [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in if_given if getattr(args, k) is not None]
    sizes = [] if args.quick else [f"--{k.replace('_', '-')} {getattr(args, k)}"
                                   for k in ("classify_rows", "classify_rounds", "classify_threads")]
    return " ".join(["python bench/speed.py", *head, *(["--quick"] if args.quick else []), *flags, *sizes])


def classify_inputs(data: Path | None, rows: int, tmp: Path) -> tuple[Path, list[str]]:
    """Support CSV (the HWU64 5-shot examples, or 64 synthetic labels x 5 without the data) and ``rows``
    distinct real texts for the `fewshot classify` measurements."""
    if data is not None:
        support = data / "hwu64" / "train_5.csv"
    else:
        support = tmp / "support.csv"
        support_frame(320, n_labels=64).to_csv(support, index=False)
    return support, list(dict.fromkeys(real_texts(data, rows + 2000)))[:rows]


def classify_seconds(model: str, int8: bool, support: Path, texts: Path, tmp: Path, threads: int) -> float:
    """Wall-clock seconds of one `fewshot classify` process (start-up, model load, fit, encode, write)."""
    cmd = [sys.executable, "-m", "fewshot.cli", "classify", "--support", str(support), "--input", str(texts),
           "--output", str(tmp / "out.csv"), "--model", model] + (["--int8"] if int8 else [])
    env = {**os.environ, "FEWSHOT_NO_PROGRESS": "1", "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr[-2000:]}")
    return seconds


def encoder_rows(model: str, data: Path | None, n: int, rounds: int, classify_rows: int, classify_rounds: int,
                 tmp: Path, threads: int = 2, classify_only: bool = False) -> dict[str, Any]:
    """fp32 vs int8 for one encoder, each pair measured back to back (interleaved) so load hits both alike.

    ``throughput``: :func:`int8_vs_fp32` (``n`` real texts, ``rounds`` rounds, torch's default threads).
    ``latency``: one uncached short text through ``predict``, 100 queries, fp32 and int8 alternating.
    ``fit``: seconds from 77 labels x 5 synthetic examples to a ready classifier (fresh caches; model loading
    not included), fp32 and int8 alternating, ``rounds`` times.
    ``classify``: `fewshot classify` processes with ``threads`` threads: ``classify_rows`` real texts and 20
    of them, with the HWU64 5-shot examples (320 texts, 64 labels), fp32 and ``--int8`` alternating;
    ``per_text_ratio`` compares (large - small) seconds, the cost of the extra texts alone.
    ``classify_only``: that part alone (a rerun of it, a few minutes).
    """
    out: dict[str, Any] = {"model": model, "load_average_start": load_average()}
    if not classify_only:
        out |= in_process_rows(model, data, n, rounds)
    out |= classify_rows_part(model, data, classify_rows, classify_rounds, tmp, threads)
    out["load_average_end"] = load_average()
    return out


def in_process_rows(model: str, data: Path | None, n: int, rounds: int) -> dict[str, Any]:
    """The throughput, latency and fit parts of :func:`encoder_rows`."""
    from fewshot import FewShotClassifier

    out: dict[str, Any] = {"throughput": int8_vs_fp32(data, n, rounds, accuracy=False, model=model)}
    out["load_average_after_throughput"] = load_average()

    sup = support_frame(385, n_labels=77, seed=77)
    clfs = {k: FewShotClassifier(model, int8=k == "int8").fit(sup.text.tolist()[:20], sup.label.tolist()[:20])
            for k in ("fp32", "int8")}
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for i, q in enumerate(synthetic_texts(103, seed=3)):
        for name, clf in clfs.items():
            start = time.perf_counter()
            clf.predict([q + " ?"])
            if i >= 3:  # the first three warm up
                times[name].append(1000 * (time.perf_counter() - start))
    out["latency"] = {f"{k}_ms_p50": float(np.percentile(v, 50)) for k, v in times.items()}
    out["latency"] |= {f"{k}_ms_p99": float(np.percentile(v, 99)) for k, v in times.items()}
    out["latency"]["int8_vs_fp32_p50"] = out["latency"]["fp32_ms_p50"] / out["latency"]["int8_ms_p50"]

    fit: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(rounds):
        for name, clf in clfs.items():
            clf.encoder._cache.clear()
            fresh = FewShotClassifier(encoder=clf.encoder, int8=name == "int8")
            start = time.perf_counter()
            fresh.fit(sup.text.tolist(), sup.label.tolist())
            fit[name].append(time.perf_counter() - start)
    out["fit_77x5"] = {"seconds": fit, "fp32_s_median": float(np.median(fit["fp32"])),
                       "int8_s_median": float(np.median(fit["int8"])),
                       "int8_vs_fp32": float(np.median([a / b for a, b in zip(fit["fp32"], fit["int8"])]))}
    out["load_average_after_fit"] = load_average()
    return out


def classify_rows_part(model: str, data: Path | None, classify_rows: int, classify_rounds: int, tmp: Path,
                       threads: int) -> dict[str, Any]:
    """The `fewshot classify` part of :func:`encoder_rows`."""
    out: dict[str, Any] = {}
    support, texts = classify_inputs(data, classify_rows, tmp)
    inputs = {"large": tmp / "large.csv", "small": tmp / "small.csv"}
    pd.DataFrame({"text": texts}).to_csv(inputs["large"], index=False)
    pd.DataFrame({"text": texts[:20]}).to_csv(inputs["small"], index=False)
    seconds: dict[str, list[float]] = {f"{mode}_{size}": [] for size in inputs for mode in ("fp32", "int8")}
    classify_seconds(model, True, support, inputs["small"], tmp, threads)  # warm the OS file cache
    for _ in range(classify_rounds):
        for size, path in inputs.items():
            for mode in ("fp32", "int8"):
                seconds[f"{mode}_{size}"].append(classify_seconds(model, mode == "int8", support, path, tmp, threads))
    ratio = [a / b for a, b in zip(seconds["fp32_large"], seconds["int8_large"])]
    per_text = [(fl - fs) / (il - is_) for fl, fs, il, is_ in
                zip(seconds["fp32_large"], seconds["fp32_small"], seconds["int8_large"], seconds["int8_small"])]
    out["classify"] = {"rows": len(texts), "small_rows": 20, "support": str(support.name), "threads": threads,
                       "rounds": classify_rounds, "seconds": seconds,
                       "texts_per_s_median": {k: float(np.median([len(texts) / t for t in v]))
                                              for k, v in seconds.items() if k.endswith("large")},
                       "int8_vs_fp32": float(np.median(ratio)),
                       "per_text_int8_vs_fp32": float(np.median(per_text)),
                       "fixed_seconds_median": {m: float(np.median(seconds[f"{m}_small"])) for m in ("fp32", "int8")}}
    return out


def app_api_latency(n: int) -> dict[str, Any]:
    """Single-text latency through the app's HTTP API: `python app.py` on a free loopback port, gradio_client
    calling /classify ``n`` times per encoder (fp32, int8), each time an uncached text."""
    import socket
    import urllib.request

    from gradio_client import Client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = os.environ | {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "FEWSHOT_AUTH": "",
                        "GRADIO_ANALYTICS_ENABLED": "False", "FEWSHOT_MODEL": "minilm",
                        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url + "config", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the app did not start") from None
                time.sleep(0.5)
        client = Client(url, verbose=False)
        client.predict("Support tickets", api_name="/load_example")
        out: dict[str, Any] = {"calls": n}
        for fast in (False, True):
            queries = synthetic_texts(n + 3, seed=5 + fast)
            for q in queries[:3]:  # warm up: fits the session's classifier (and loads the int8 encoder)
                client.predict(q, False, 0.0, fast, api_name="/classify")
            times = []
            for q in queries[3:]:
                start = time.perf_counter()
                client.predict(q + " ?", False, 0.0, fast, api_name="/classify")
                times.append(1000 * (time.perf_counter() - start))
            name = "int8" if fast else "fp32"
            out[f"{name}_ms_p50"] = float(np.percentile(times, 50))
            out[f"{name}_ms_p99"] = float(np.percentile(times, 99))
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def latency_and_fit(sizes: list[int]) -> dict[str, Any]:
    """Single-text predict latency (uncached texts) and seconds from examples to a ready classifier."""
    from fewshot import FewShotClassifier

    sup = support_frame(200)
    out: dict[str, Any] = {}
    for use_int8 in (False, True):
        clf = FewShotClassifier("minilm", int8=use_int8).fit(sup.text.tolist(), sup.label.tolist())
        times = []
        for q in synthetic_texts(200, seed=3):
            start = time.perf_counter()
            clf.predict([q + " ?"])
            times.append(1000 * (time.perf_counter() - start))
        suffix = "_int8" if use_int8 else ""
        out[f"predict_ms_p50{suffix}"] = float(np.percentile(times, 50))
        out[f"predict_ms_p99{suffix}"] = float(np.percentile(times, 99))
    for size in sizes:
        frame = support_frame(size, n_labels=max(2, min(100, size // 10)), seed=size)
        fresh = FewShotClassifier("minilm")
        fresh.encoder._cache.clear()
        start = time.perf_counter()
        fresh.fit(frame.text.tolist(), frame.label.tolist())
        out[f"fit_seconds_{size}"] = time.perf_counter() - start
    return out


def index_scale(sizes: list[int], dim: int = 384, queries: int = 200) -> list[dict[str, Any]]:
    """Exact vs IVF search on clustered synthetic unit vectors: ms/query (one at a time), recall@10, memory."""
    import faiss

    from fewshot.support import SupportIndex

    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        centres = rng.normal(size=(max(10, n // 500), dim)).astype(np.float32)
        x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        q = x[rng.integers(0, n, queries)] + 0.3 * rng.normal(size=(queries, dim)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        row: dict[str, Any] = {"vectors": n, "memory_mb": n * dim * 4 / 2**20}
        for kind in ("exact", "ivf"):
            index = SupportIndex(dim, kind=kind)
            start = time.perf_counter()
            index.add(np.arange(n), x)
            row[f"{kind}_build_s"] = time.perf_counter() - start
            start = time.perf_counter()
            found = [index.search(q[i:i + 1], 10)[1][0] for i in range(queries)]
            row[f"{kind}_ms_per_query"] = 1000 * (time.perf_counter() - start) / queries
            if kind == "exact":
                truth = found
            else:
                row["ivf_recall_at_10"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))
                row["ivf_nprobe"] = int(index._index.nprobe)
                row["ivf_nprobe_sweep"] = {}
                for nprobe in (8, 16, 32, 64):  # the speed/recall trade-off behind the default nprobe
                    index._index.nprobe = nprobe
                    start = time.perf_counter()
                    swept = [index.search(q[i:i + 1], 10)[1][0] for i in range(queries)]
                    ms = 1000 * (time.perf_counter() - start) / queries
                    rec = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(swept, truth)]))
                    row["ivf_nprobe_sweep"][nprobe] = {"ms_per_query": ms, "recall_at_10": rec}
                index._index.nprobe = row["ivf_nprobe"]
                removed = index.remove(np.arange(10))
                row["ivf_removal_works"] = removed == 10 and len(index) == n - 10
            del index
        faiss.omp_set_num_threads(faiss.omp_get_max_threads())
        rows.append(row)
    return rows


def classify_memory(rows_list: list[int], tmp: Path) -> dict[str, Any]:
    """Peak RSS of a `fewshot classify` process per CSV size (rows drawn from 2,000 unique texts)."""
    support_frame(100).to_csv(tmp / "support.csv", index=False)
    pool = synthetic_texts(2000, seed=4)
    out: dict[str, Any] = {}
    for n in rows_list:
        path = tmp / f"rows_{n}.csv"
        with open(path, "w") as fh:
            fh.write("id,text\n")
            for i in range(n):
                fh.write(f"{i},{pool[i % len(pool)]}\n")
        # VmHWM (peak resident set of this process image); ru_maxrss would carry over the parent's peak
        code = ("import re, sys; from fewshot.cli import main; rc = main(sys.argv[1:]); "
                "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(rc)")
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code, "classify", "--support", str(tmp / "support.csv"),
                              "--input", str(path), "--output", str(tmp / "out.csv"), "--model", "minilm"],
                             capture_output=True, text=True, env={**os.environ, "FEWSHOT_NO_PROGRESS": "1"})
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        out[f"peak_rss_mb_{n}"] = int(res.stdout.strip().splitlines()[-1]) / 1024
        out[f"seconds_{n}"] = time.perf_counter() - start
        path.unlink()
    first, last = rows_list[0], rows_list[-1]
    out["peak_ratio"] = out[f"peak_rss_mb_{last}"] / out[f"peak_rss_mb_{first}"]
    return out


def cpu_model() -> str:
    """The CPU's name (ratios between backends depend on it: VNNI / AMX make int8 fast)."""
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def main() -> int:
    p = parser("fewshot speed and scale benchmark", out="speed.json")
    p.add_argument("--quick", action="store_true", help="small sizes: finishes in a couple of minutes")
    p.add_argument("--only", choices=["e2e", "int8", "latency", "index", "memory", "encoder", "pair"],
                   help="rerun one part, updating --out in place (encoder: one --model, fp32 vs int8; pair: "
                        "--model against --against)")
    p.add_argument("--against", default="minilm", help="--only pair: the encoder --model is compared with")
    p.add_argument("--model", default="minilm",
                   help="encoder for --only int8 / encoder: minilm (default), default, mpnet or a folder")
    p.add_argument("--texts", type=int, default=None,
                   help="texts for the throughput rounds (default 2,000; --only encoder: 1,000)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 9; --only encoder: 5)")
    p.add_argument("--classify-rows", type=int, default=1000,
                   help="--only encoder: rows of the large `fewshot classify` input")
    p.add_argument("--classify-rounds", type=int, default=3, help="--only encoder: interleaved classify rounds")
    p.add_argument("--threads", type=int, default=None,
                   help="--only encoder: torch threads of the in-process parts (default: torch's, one per core)")
    p.add_argument("--classify-threads", type=int, default=2, help="--only encoder: threads of `fewshot classify`")
    p.add_argument("--classify-only", action="store_true",
                   help="--only encoder: the `fewshot classify` part alone (speed_encoder_<model>_classify.json)")
    args = p.parse_args()
    if args.only == "encoder":
        return run_encoder(args)
    if args.only == "pair":
        return run_pair(args)
    if args.model != "minilm" and args.out.name == "speed.json":  # another encoder: its own file
        args.out = args.out.with_name(f"speed_{Path(args.model).name}.json")
    reproducible()
    data = data_folder(args)
    q = args.quick
    results: dict[str, Any] = {"quick": q, "cpus": os.cpu_count(), "cpu": cpu_model()}
    if args.only:
        results = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else results
        with tempfile.TemporaryDirectory() as tmp_name:
            if args.only == "e2e":
                parts = {"encode_vs_classify": encode_vs_classify(1000 if q else 5000, Path(tmp_name))}
            elif args.only == "int8":
                parts = {"int8_vs_fp32": int8_vs_fp32(data, args.texts or (1000 if q else 2000),
                                                      args.rounds or (1 if q else 9), accuracy=not q,
                                                      model=args.model)}
            elif args.only == "latency":
                parts = {"latency_fit": latency_and_fit([100, 1000] if q else [100, 1000, 10_000]),
                         "app_api_latency": app_api_latency(30 if q else 200)}
            elif args.only == "index":
                parts = {"index": index_scale([1000, 10_000] if q else [1000, 10_000, 100_000, 1_000_000])}
            else:
                parts = {"classify_memory": classify_memory([10_000, 100_000] if q else [10_000, 1_000_000],
                                                            Path(tmp_name))}
        results.update({name: part | {"cpu": cpu_model()} if isinstance(part, dict) else part
                        for name, part in parts.items()})  # parts may come from different machines
        write_json(args.out, results)
        print(json.dumps(parts, indent=1))
        return 0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        results["encode_vs_classify"] = encode_vs_classify(1000 if q else 5000, tmp)
        results["int8_vs_fp32"] = int8_vs_fp32(data, 1000 if q else 2000, 1 if q else 9, accuracy=not q)
        results["latency_fit"] = latency_and_fit([100, 1000] if q else [100, 1000, 10_000])
        results["app_api_latency"] = app_api_latency(30 if q else 200)
        results["index"] = index_scale([1000, 10_000] if q else [1000, 10_000, 100_000, 1_000_000])
        results["classify_memory"] = classify_memory([10_000, 100_000] if q else [10_000, 1_000_000], tmp)
    write_json(args.out, results)
    e, i8, lf, mem, api = (results[k] for k in ("encode_vs_classify", "int8_vs_fp32", "latency_fit",
                                                 "classify_memory", "app_api_latency"))
    print("| measure | value |\n|---|---|")
    print(f"| raw fp32 encode | {e['raw_encode_per_s']:.0f} texts/s |")
    print(f"| end-to-end classify | {e['classify_per_s']:.0f} texts/s (ratio {e['ratio']:.2f}) |")
    best = {k: max(v) for k, v in i8["per_s"].items()}
    print(f"| encoder texts/s ({i8['texts']} {i8['source']} texts, {i8['threads']} threads): fp32 / "
          f"int8 / int8 unfused quantiser | {best['torch_fp32']:.0f} / {best['int8']:.0f} / {best['int8_unfused']:.0f} |")
    print(f"| int8 / fp32 throughput | {i8['int8_vs_torch_fp32']:.2f}x (unfused quantiser: "
          f"{i8['int8_unfused_vs_torch_fp32']:.2f}x) |")
    print(f"| int8 embedding cosine to fp32: mean / 1st percentile | {i8['cosine_int8']['mean']:.4f} / "
          f"{i8['cosine_int8']['p01']:.4f} |")
    for key in sorted(k for k in i8 if k.endswith("_change_points")):
        model, name = key.split("_")[:2]
        print(f"| int8 accuracy, {model} {name} 5-shot | {100 * i8[f'{model}_{name}_5shot_fp32']:.2f} -> "
              f"{100 * i8[f'{model}_{name}_5shot_int8']:.2f} ({i8[key]:+.2f} points) |")
    print(f"| predict one text p50 / p99, Python API fp32 | {lf['predict_ms_p50']:.1f} / {lf['predict_ms_p99']:.1f} ms |")
    print(f"| predict one text p50 / p99, Python API int8 | {lf['predict_ms_p50_int8']:.1f} / "
          f"{lf['predict_ms_p99_int8']:.1f} ms |")
    for name in ("fp32", "int8"):
        print(f"| predict one text p50 / p99, app HTTP API {name} | {api[f'{name}_ms_p50']:.1f} / "
              f"{api[f'{name}_ms_p99']:.1f} ms |")
    for key in sorted(k for k in lf if k.startswith("fit_seconds_")):
        print(f"| examples to ready classifier, {key.rsplit('_', 1)[1]} examples | {lf[key]:.2f} s |")
    for row in results["index"]:
        print(f"| index {row['vectors']:,} vectors: exact / IVF ms per query | {row['exact_ms_per_query']:.2f} / "
              f"{row['ivf_ms_per_query']:.2f} (recall@10 {row['ivf_recall_at_10']:.3f}, "
              f"{row['memory_mb']:.0f} MB) |")
    sizes = sorted(int(k.rsplit("_", 1)[1]) for k in mem if k.startswith("peak_rss_mb_"))
    print(f"| classify peak memory {sizes[0]:,} / {sizes[-1]:,} rows | {mem[f'peak_rss_mb_{sizes[0]}']:.0f} / "
          f"{mem[f'peak_rss_mb_{sizes[-1]}']:.0f} MB (ratio {mem['peak_ratio']:.2f}) |")
    return 0


def model_pair(model: str, against: str, data: Path | None, n: int, rounds: int, classify_rows: int,
               classify_rounds: int, tmp: Path, threads: int) -> dict[str, Any]:
    """``model`` against ``against`` (two encoders of one architecture, e.g. the shipped default and the frozen
    MiniLM it is trained from), every measurement interleaved so that machine load hits both alike; each
    ratio (``model`` / ``against`` speed) is the median of the per-round ratios, and the two alternate which goes
    first (ABBA).

    ``encode``: ``n`` real texts through ``Encoder.encode`` (fresh caches), fp32 and int8;
    ``latency``: one uncached short text through ``predict``, 100 queries, fp32;
    ``classify``: `fewshot classify` processes (``threads`` threads, start-up and loading included) on
    ``classify_rows`` real texts with the HWU64 5-shot examples, fp32.
    """
    from fewshot import FewShotClassifier
    from fewshot.encoders.encoder import Encoder

    names = (model, against)
    texts = real_texts(data, n)
    out: dict[str, Any] = {"model": model, "against": against, "texts": len(texts), "rounds": rounds,
                           "load_average_start": load_average()}
    for mode in ("fp32", "int8"):
        encoders = {m: Encoder(m, int8=mode == "int8", cache_size=0) for m in names}
        for enc in encoders.values():
            enc.encode(texts[:64])  # warm up (and, for int8, quantise)
        per_s: dict[str, list[float]] = {m: [] for m in names}
        for r in range(rounds):
            for m, enc in in_turns(list(encoders.items()), r):
                start = time.perf_counter()
                enc.encode(texts)
                per_s[m].append(len(texts) / (time.perf_counter() - start))
        out[f"encode_{mode}"] = {"per_s": per_s, "ratio": float(np.median([a / b for a, b in
                                                                           zip(per_s[model], per_s[against])]))}
    sup = support_frame(100, n_labels=20, seed=7)
    clfs = {m: FewShotClassifier(m).fit(sup.text.tolist(), sup.label.tolist()) for m in names}
    times: dict[str, list[float]] = {m: [] for m in names}
    for i, q in enumerate(synthetic_texts(103, seed=3)):
        for m, clf in in_turns(list(clfs.items()), i):
            start = time.perf_counter()
            clf.predict([q + " ?"])
            if i >= 3:  # the first three warm up
                times[m].append(1000 * (time.perf_counter() - start))
    out["latency_ms_p50"] = {m: float(np.percentile(v, 50)) for m, v in times.items()}
    out["latency_ratio_p50"] = out["latency_ms_p50"][against] / out["latency_ms_p50"][model]
    support, texts = classify_inputs(data, classify_rows, tmp)
    path = tmp / "rows.csv"
    pd.DataFrame({"text": texts}).to_csv(path, index=False)
    classify_seconds(against, False, support, path, tmp, threads)  # warm the OS file cache
    seconds: dict[str, list[float]] = {m: [] for m in names}
    for r in range(classify_rounds):
        for m in in_turns(list(names), r):
            seconds[m].append(classify_seconds(m, False, support, path, tmp, threads))
    out["classify"] = {"rows": classify_rows, "threads": threads, "seconds": seconds,
                       "ratio": float(np.median([b / a for a, b in zip(seconds[model], seconds[against])]))}
    out["load_average_end"] = load_average()
    return out


def run_pair(args: Any) -> int:
    """``--only pair``: :func:`model_pair` for ``--model`` against ``--against``, its own file, and a table."""
    reproducible()
    data = data_folder(args)
    q = args.quick
    out = args.out
    if out.name == "speed.json":
        out = out.with_name(f"speed_pair_{Path(args.model).name}_{Path(args.against).name}.json")
    with tempfile.TemporaryDirectory() as tmp_name:
        rows = model_pair(args.model, args.against, data, args.texts or (200 if q else 1000),
                          args.rounds or (1 if q else 5), 50 if q else args.classify_rows,
                          1 if q else args.classify_rounds, Path(tmp_name), args.classify_threads)
    command = rerun_command(args, ["--only pair --model", args.model, "--against", args.against], ("texts", "rounds"))
    write_json(out, {"command": command, "cpu": cpu_model(), "cpus": os.cpu_count(), "quick": q} | rows)
    m, a = args.model, args.against
    print(f"| measure | {m} | {a} | {m} / {a} speed (median of paired rounds) |\n|---|---|---|---|")
    for mode in ("fp32", "int8"):
        e = rows[f"encode_{mode}"]
        print(f"| encode {rows['texts']} texts, {mode}, texts/s (best round) | {max(e['per_s'][m]):.0f} | "
              f"{max(e['per_s'][a]):.0f} | {e['ratio']:.3f} |")
    lat = rows["latency_ms_p50"]
    print(f"| one text p50 ms | {lat[m]:.1f} | {lat[a]:.1f} | {rows['latency_ratio_p50']:.3f} |")
    c = rows["classify"]
    print(f"| `fewshot classify` {c['rows']} rows, {c['threads']} threads, s (median) | "
          f"{np.median(c['seconds'][m]):.1f} | {np.median(c['seconds'][a]):.1f} | {c['ratio']:.3f} |")
    print(f"load average: start {rows['load_average_start']}, end {rows['load_average_end']}")
    return 0


def print_in_process(rows: dict[str, Any]) -> None:
    """Table rows of the throughput, latency and fit parts."""
    t, lat, fit = rows["throughput"], rows["latency"], rows["fit_77x5"]
    best = {k: max(v) for k, v in t["per_s"].items()}
    print(f"| encoder texts/s, best round ({t['texts']} texts, {t['threads']} threads) | {best['torch_fp32']:.0f} | "
          f"{best['int8']:.0f} | {t['int8_vs_torch_fp32']:.2f}x "
          f"(unfused quantiser {t['int8_unfused_vs_torch_fp32']:.2f}x) |")
    print(f"| one text p50 / p99 ms | {lat['fp32_ms_p50']:.1f} / {lat['fp32_ms_p99']:.1f} | "
          f"{lat['int8_ms_p50']:.1f} / {lat['int8_ms_p99']:.1f} | {lat['int8_vs_fp32_p50']:.2f}x |")
    print(f"| fit 77 labels x 5, s | {fit['fp32_s_median']:.2f} | {fit['int8_s_median']:.2f} | "
          f"{fit['int8_vs_fp32']:.2f}x |")


def run_encoder(args: Any) -> int:
    """``--only encoder``: :func:`encoder_rows` for ``--model``, written to its own file, and a table."""
    reproducible()
    if args.threads:
        set_threads(args.threads)
    data = data_folder(args)
    q = args.quick
    out = args.out
    if out.name == "speed.json":  # the default: one file per encoder
        out = out.with_name(f"speed_encoder_{Path(args.model).name}{'_classify' if args.classify_only else ''}.json")
    with tempfile.TemporaryDirectory() as tmp_name:
        rows = encoder_rows(args.model, data, args.texts or (200 if q else 1000), args.rounds or (1 if q else 5),
                            50 if q else args.classify_rows, 1 if q else args.classify_rounds, Path(tmp_name),
                            threads=args.classify_threads, classify_only=args.classify_only)
    command = rerun_command(args, ["--only encoder --model", args.model], ("texts", "rounds", "threads"))
    command += " --classify-only" if args.classify_only else ""
    result = {"command": command, "cpu": cpu_model(), "cpus": os.cpu_count(), "quick": q} | rows
    write_json(out, result)
    c = rows["classify"]
    print(f"| {args.model} | fp32 | int8 | int8 / fp32 (median of paired runs) |\n|---|---|---|---|")
    if not args.classify_only:
        print_in_process(rows)
    tps = c["texts_per_s_median"]
    print(f"| `fewshot classify` {c['rows']} rows, {c['threads']} threads, texts/s | {tps['fp32_large']:.0f} | "
          f"{tps['int8_large']:.0f} | {c['int8_vs_fp32']:.2f}x "
          f"(per text beyond 20: {c['per_text_int8_vs_fp32']:.2f}x) |")
    print(f"| `fewshot classify` 20 rows (start-up), s | {c['fixed_seconds_median']['fp32']:.1f} | "
          f"{c['fixed_seconds_median']['int8']:.1f} | |")
    print(f"load average: start {rows['load_average_start']}, end {rows['load_average_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
