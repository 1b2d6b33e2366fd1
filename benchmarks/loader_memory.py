"""Training-data memory and loader throughput: decode-everything (the old train job) vs streamed batches.

Not a test. ``python benchmarks/loader_memory.py [--pairs 500,5000] [--steps 200] [--workers 0,2,4]``

1. Writes synthetic Rain13K roots (``bench data synth``'s writer: MPRNet's ``input/`` + ``target/``
   JPEGs at Rain13K's size mix, ``bench.data.synth.RAIN13K_PARTS``) with each pair count, under
   ``--scratch`` (reused when already there).
2. Runs a real training job per configuration in its own subprocess: ``bench.train.loop.train``
   with a small conv net (3-8-3 channels), L2 loss, batch 4, patch 256, ``--steps`` steps, one torch thread. The
   old way decodes every image with ``read_image`` into float32 and draws with ``PatchSampler``
   (what ``bench/jobs/train.py`` did); the new way uses ``bench.data.stream.training_batches``.
   ``main ru_maxrss`` is the job process's own peak (``getrusage``); ``RUSAGE_CHILDREN`` is not used
   because importing torch already forks a helper whose inherited RSS would pollute it.
   While it runs, this process samples the child's process tree (the job and its DataLoader
   workers) five times a second: the peak of the summed PSS (shared pages split between the
   processes that map them, so forked workers are not counted twice) and of the summed RSS. The
   child reports its own ``getrusage`` peak RSS, and its reaped workers' largest.
   The old way is run only where its float32 images fit ``--old-max-gib``; above that its peak is
   projected (the measured smaller run plus the extra float32 bytes, which is what it allocates).
3. Loader throughput: patches per second at batch 4, patch 256, from the largest root, with each
   worker count, no cache (the worst case: every patch decodes a pair), after a warm-up batch; set
   against what a paper step consumes (batch 4 at ~55 ms per step: ~73 patches/s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PAPER_STEP_S, BATCH, PATCH = 0.055, 4, 256
MIB = 1 << 20


def make_root(scratch: Path, pairs: int) -> tuple[Path, float]:
    """A synthetic Rain13K root with ``pairs`` pairs (reused if a complete one is there); seconds spent writing."""
    from bench.data.synth import FOLDERS, synth_rain13k
    from bench.data.verify import MARKER

    root = scratch / f"rain13k_{pairs}"
    marker = root / FOLDERS["rain13k"] / MARKER
    if marker.is_file() and json.loads(marker.read_text())["counts"] == {"train": pairs}:
        return root, 0.0
    t0 = time.perf_counter()
    synth_rain13k(root, count=pairs, seed=0)
    return root, time.perf_counter() - t0


# --- the training job (child process) -------------------------------------------------------------

def child(mode: str, root: Path, steps: int, workers: int, cache_mib: int) -> None:
    import torch
    from torch import nn

    from bench.data.base import read_image
    from bench.data.patches import PatchSampler
    from bench.data.stream import training_batches
    from bench.losses.composite import build_loss
    from bench.registry import DATASETS
    from bench.train.loop import TrainConfig, train

    torch.set_num_threads(1)
    pairs = DATASETS.get("rain13k")(root)
    t0 = time.perf_counter()
    if mode == "old":
        degraded = [read_image(p.degraded) for p in pairs.pairs]
        clear = [read_image(p.clear) for p in pairs.pairs]
        source = PatchSampler(degraded, clear, patch=PATCH, batch=BATCH, seed=0)
    else:
        source = training_batches(pairs, PATCH, BATCH, 0, workers=workers, cache_bytes=cache_mib * MIB)
    setup = time.perf_counter() - t0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    cfg = TrainConfig(steps=steps, batch=BATCH, patch=PATCH, lr=1e-4, seed=0, ckpt_every=steps, log_every=steps)
    with tempfile.TemporaryDirectory() as out:
        t1 = time.perf_counter()
        train(model, build_loss({"l2": {"norm": "l2"}}), source, cfg, Path(out), log=lambda m: None)
        seconds = time.perf_counter() - t1
    if hasattr(source, "close"):
        source.close()
    print(json.dumps({"setup_s": setup, "train_s": seconds, "pairs": len(pairs),
                      "main_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_child(mode: str, root: Path, steps: int, workers: int, cache_mib: int) -> dict:
    """Run one training job, sampling its process tree's memory; its JSON line plus the sampled peaks."""
    import psutil

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, __file__, "--child", mode, "--root", str(root), "--steps", str(steps),
           "--child-workers", str(workers), "--cache-mib", str(cache_mib)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = {"pss": 0, "rss": 0, "procs": 0}
    done = threading.Event()

    def sample() -> None:
        try:
            top = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            pss = rss = n = 0
            try:
                for p in [top, *top.children(recursive=True)]:
                    try:
                        info = p.memory_full_info()
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
                    pss, rss, n = pss + info.pss, rss + info.rss, n + 1
            except psutil.NoSuchProcess:
                break
            peak.update(pss=max(peak["pss"], pss), rss=max(peak["rss"], rss), procs=max(peak["procs"], n))
            done.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"child {mode} failed ({proc.returncode}):\n{err[-3000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    return res | {"tree_pss_mib": peak["pss"] / MIB, "tree_rss_mib": peak["rss"] / MIB, "procs": peak["procs"]}


# --- loader throughput ---------------------------------------------------------------------------

def throughput(root: Path, workers: int, batches: int) -> tuple[float, float]:
    """(patches per second after warm-up, seconds to the first batch) with ``workers``, no cache."""
    from bench.data.stream import training_batches
    from bench.registry import DATASETS

    pairs = DATASETS.get("rain13k")(root)
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # more workers than cores: measured
    t0 = time.perf_counter()
    with training_batches(pairs, PATCH, BATCH, 1, workers=workers, cache_bytes=0) as src:
        src.next_batch()
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        for _ in range(batches):
            src.next_batch()
        return batches * BATCH / (time.perf_counter() - t1), first


def float32_gib(root: Path) -> float:
    """What decoding every image to float32 allocates, from the headers."""
    from bench.data.verify import probe
    from bench.registry import DATASETS

    px = 0
    for p in DATASETS.get("rain13k")(root).pairs:
        w, h = probe(p.degraded).size  # type: ignore[misc]
        px += 2 * w * h
    return px * 3 * 4 / (1 << 30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="500,5000")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--workers", default="0,2,4", help="worker counts for the throughput table")
    ap.add_argument("--train-workers", type=int, default=2, help="workers of the streamed training runs (and 0)")
    ap.add_argument("--batches", type=int, default=40, help="batches timed per throughput measurement")
    ap.add_argument("--scratch", type=Path, default=Path("/work/scratch/data/loader_memory"))
    ap.add_argument("--old-max-gib", type=float, default=6.0, help="largest float32 footprint the old way may try")
    ap.add_argument("--child", choices=("old", "new"))
    ap.add_argument("--root", type=Path)
    ap.add_argument("--child-workers", type=int, default=0)
    ap.add_argument("--cache-mib", type=int, default=1024)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.root, a.steps, a.child_workers, a.cache_mib)
        return

    import torch

    from bench.data.stream import DEFAULT_CACHE_BYTES

    counts = [int(x) for x in a.pairs.split(",")]
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU(s), cuda={torch.cuda.is_available()}; "
          f"{a.steps} steps of batch {BATCH}, patch {PATCH}, 1 torch thread")
    roots = {}
    for n in counts:
        root, secs = make_root(a.scratch, n)
        roots[n] = root
        how = f"written in {secs:.0f} s" if secs else "reused"
        print(f"synthetic Rain13K, {n} pairs: {root} ({how}), "
              f"{float32_gib(root):.2f} GiB as float32")
    cache_mib = DEFAULT_CACHE_BYTES // MIB
    configs = [("old", 0, 0), ("new", 0, 0), ("new", a.train_workers, 0), ("new", a.train_workers, cache_mib)]
    rows, old_measured = [], None
    for n in counts:
        need = float32_gib(roots[n])
        for mode, w, cache in configs:
            label = "decode all (old)" if mode == "old" else f"stream, {w} workers, cache {cache} MiB/worker"
            if mode == "old" and need > a.old_max_gib:
                if old_measured is None:
                    rows.append((n, label, "skipped", "", "", "", ""))
                    continue
                _, m_pss, m_need = old_measured
                proj = m_pss + (need - m_need) * 1024
                rows.append((n, label + " [projected]", f"{proj:,.0f}", "", "", "", "not run: float32 images "
                             f"{need:.1f} GiB > --old-max-gib {a.old_max_gib}"))
                continue
            r = run_child(mode, roots[n], a.steps, w, cache)
            if mode == "old":
                old_measured = (n, r["tree_pss_mib"], need)
            rows.append((n, label, f"{r['tree_pss_mib']:,.0f}", f"{r['tree_rss_mib']:,.0f}",
                         f"{r['main_maxrss_mib']:,.0f}", f"{r['setup_s']:.1f}",
                         f"{1000 * r['train_s'] / a.steps:.0f} ms/step, {r['procs']} process(es)"))
            print(f"  measured {n} pairs, {label}: {rows[-1][2]} MiB tree PSS", flush=True)
    print("\n| pairs | data path | peak tree PSS (MiB) | peak tree RSS sum (MiB) | main ru_maxrss (MiB) | setup (s) "
          "| notes |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")

    big = roots[max(counts)]
    need_rate = BATCH / PAPER_STEP_S
    print(f"\nloader throughput, {max(counts)} pairs, batch {BATCH}, patch {PATCH}, no cache, {a.batches} batches "
          f"after a warm-up one (a paper step of {PAPER_STEP_S * 1000:.0f} ms consumes {need_rate:.0f} patches/s):")
    print("| workers | patches/s | x paper step's need | first batch (s) |\n|---|---|---|---|")
    for w in (int(x) for x in a.workers.split(",")):
        rate, first = throughput(big, w, a.batches)
        print(f"| {w} | {rate:.0f} | {rate / need_rate:.2f} | {first:.1f} |", flush=True)


if __name__ == "__main__":
    main()
