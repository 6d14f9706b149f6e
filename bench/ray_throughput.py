"""Throughput and memory of ``classify --engine ray`` with 1 vs 2 workers (actors) on this machine.

    python bench/ray_throughput.py                 # 4000 synthetic rows, workers 1 and 2, MiniLM
    python bench/ray_throughput.py --rows 20000 --workers 1,2,4

Starts a local Ray (``ray.init(num_cpus=os.cpu_count())``), fits a 12-example classifier, writes a CSV
of synthetic texts (all distinct: the encoder's per-text cache must not help), then times
:func:`fewshot.distributed.classify_with_ray` end to end (actor start and model load included, as a
user sees it) and, for reference, the local engine on the same file. A sampler thread records the peak
RSS of every Ray worker process that runs the classifier (``MapWorker(MapBatches(_Predictor))``) and of
this driver process. Writes ``--out`` (default ``bench/results/ray.json``).
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py
from common import environment, parser, write_json  # noqa: E402

SUPPORT = {
    "refund": ["I want my money back", "where is my refund", "please refund my order", "how long does a refund take"],
    "lost_card": ["I lost my card", "my card was stolen", "I can't find my credit card", "block my card, it is missing"],
    "weather": ["will it rain tomorrow", "what's the weather like today", "is it going to be sunny",
                "how cold is it outside"],
}
VOCAB = ("refund money back order returned paid charge card lost stolen missing bank block rain sunny cold "
         "umbrella weather outside forecast please my the is where today can I you how need help with account "
         "tomorrow week yesterday transfer balance fee").split()


class RssSampler(threading.Thread):
    """Peak RSS (bytes) per Ray classifier worker process, and of this process, sampled every 0.2 s."""

    def __init__(self, marker: str = "_Predictor") -> None:
        super().__init__(daemon=True)
        self.marker, self.peaks, self.driver_peak = marker, {}, 0
        self._halt = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        before = {p.pid for p in self._workers()}  # an earlier run's actors may still be exiting
        while not self._halt.is_set():
            self.driver_peak = max(self.driver_peak, me.memory_info().rss)
            for proc in self._workers():
                if proc.pid not in before:
                    try:
                        self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), proc.memory_info().rss)
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
            self._halt.wait(0.2)

    def _workers(self) -> list[psutil.Process]:
        """Processes running the classifier actor (Ray renames a worker process after its actor class)."""
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if self.marker in " ".join(proc.info["cmdline"] or []):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def stop(self) -> None:
        self._halt.set()
        self.join()


def write_inputs(folder: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    support = folder / "support.csv"
    with open(support, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows((t, lab) for lab, texts in SUPPORT.items() for t in texts)
    rng = random.Random(seed)
    data = folder / "input.csv"
    with open(data, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        w.writerows((i, " ".join(rng.choices(VOCAB, k=rng.randint(5, 15)))) for i in range(rows))
    return support, data


def main() -> int:
    ap = parser(__doc__.splitlines()[0], out="ray.json", data=False)
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--workers", default="1,2", help="comma-separated actor counts (default 1,2)")
    ap.add_argument("--batch-size", type=int, default=512, help="rows per map_batches call")
    ap.add_argument("--model", default="minilm")
    args = ap.parse_args()
    os.environ.setdefault("FEWSHOT_NO_PROGRESS", "1")

    import ray

    from fewshot.cli import main as cli_main
    from fewshot.distributed.ray_engine import classify_with_ray

    work = Path(tempfile.mkdtemp(prefix="fewshot-raybench-"))
    support, data = write_inputs(work, args.rows)
    clf_dir = work / "clf"
    assert cli_main(["fit", "--support", str(support), "--model", args.model, "--out", str(clf_dir)]) == 0

    started = time.perf_counter()
    assert cli_main(["classify", "--classifier", str(clf_dir), "--input", str(data),
                     "--output", str(work / "local.csv")]) == 0
    local_s = time.perf_counter() - started
    results = {"local_engine": {"seconds": round(local_s, 2), "rows_per_s": round(args.rows / local_s, 1),
                                "note": "same process, model load included, torch on all cores"}}

    cpus = os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    runs = []
    try:
        for n in [int(x) for x in args.workers.split(",")]:
            sampler = RssSampler()
            sampler.start()
            started = time.perf_counter()
            written = classify_with_ray(data, work / f"ray_{n}.csv", classifier=clf_dir, num_workers=n,
                                        batch_size=args.batch_size)
            seconds = time.perf_counter() - started
            sampler.stop()
            assert written == args.rows
            peaks = sorted(sampler.peaks.values())
            run = {"workers": n, "rows": written, "seconds": round(seconds, 2),
                   "rows_per_s": round(written / seconds, 1),
                   "peak_rss_mb_per_worker": [round(p / 2**20) for p in peaks],
                   "driver_peak_rss_mb": round(sampler.driver_peak / 2**20),
                   "note": "driver RSS includes the encoder loaded for the local reference run"}
            runs.append(run)
            print(json.dumps(run), file=sys.stderr)
    finally:
        ray.shutdown()
    base = runs[0]["rows_per_s"] if runs else None
    for run in runs:
        run["speedup_vs_first"] = round(run["rows_per_s"] / base, 2) if base else None
    results |= {"ray": runs, "rows": args.rows, "batch_size": args.batch_size, "model": args.model,
                "cpus": cpus, "ray_version": ray.__version__, **environment(),
                "command": "python bench/ray_throughput.py " + " ".join(sys.argv[1:]),
                "note": "end to end: Ray actor start and model load included; a shared 2-core machine, so "
                        "absolute numbers are noisy"}
    write_json(args.out, results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
