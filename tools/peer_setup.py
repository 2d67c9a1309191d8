"""What the PyTorch peers of our benchmarks share: their command line, the device set up the way
hpt runs it, a line naming the peer for the JSON results, and the wall-clock timing loop."""
import argparse
import json
import os
import statistics
import sys
import time

import torch


def parse_args(doc, min_time):
    """The options every peer takes; bench/common.cpp passes them."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--min-time", type=float, default=min_time)
    ap.add_argument("--tf32", type=int, default=0, help="CUDA: allow TF32 in matmul and cuDNN (hpt's setting)")
    ap.add_argument("--serve", action="store_true",
                    help="one JSON case per stdin line (with min_time), one result line each (the bench "
                         "alternates with us)")
    return ap.parse_args()


def cases(args):
    """The requested cases: a JSON list on stdin, or with --serve one JSON object per line as they come."""
    return (json.loads(line) for line in sys.stdin if line.strip()) if args.serve else json.load(sys.stdin)


def time_wall(fn, min_time, warmup=2, min_reps=5, max_reps=1000):
    """Runs fn warmup times, then until min_reps runs and min_time seconds (at most max_reps runs).
    Returns (median ms, min ms, runs, this process's CPU ms per run). fn must wait for its own work
    (a CUDA step synchronizes)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    cpu0 = time.process_time()
    while len(times) < max_reps:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= min_reps and time.perf_counter() - start >= min_time:
            break
    cpu_ms = (time.process_time() - cpu0) * 1e3 / len(times)
    return statistics.median(times), min(times), len(times), cpu_ms


def setup(device, threads, tf32):
    """Threads for the CPU, and on CUDA cuDNN's benchmark mode (fixed shapes, as a MoCo run has,
    where the one-time search pays off as ours does) with TF32 as hpt's switch says, so both sides
    compute in the same precision. Returns (torch.device, peer description)."""
    if threads > 0:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        # PyTorch 2.x times only its heuristics' first 10 algorithms; ours times every one, Winograd
        # and FFT included, where all of our 3x3 lead on the H100 came from. 0: no limit.
        limit = ""
        if hasattr(torch.backends.cudnn, "benchmark_limit"):
            torch.backends.cudnn.benchmark_limit = 0
            limit = ", every algorithm"
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        torch.backends.cudnn.allow_tf32 = bool(tf32)
        return dev, "pytorch %s cuda %s on %s (cuDNN %s, benchmark on%s, TF32 %s)" % (
            torch.__version__, torch.version.cuda, torch.cuda.get_device_name(dev), torch.backends.cudnn.version(),
            limit, "on" if tf32 else "off")
    # bench/common.cpp starts peers with glibc's malloc keeping freed memory (GLIBC_TUNABLES); the
    # description says which allocator settings the times were taken with.
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    malloc = ("glibc malloc, freed memory kept" if "mmap_max=0" in tunables
              else "GLIBC_TUNABLES=" + tunables if tunables else "glibc malloc defaults")
    if "hugetlb=1" in tunables:
        malloc += ", huge pages"
    # On AVX-512 CPUs bench/common.cpp asks ATen and OpenBLAS for their AVX-512 kernels (1.13
    # defaults to AVX2; OpenBLAS follows OPENBLAS_CORETYPE): the description names what they ran.
    isa = "".join(", %s %s" % (name, os.environ[var])
                  for name, var in (("ATen", "ATEN_CPU_CAPABILITY"), ("OpenBLAS", "OPENBLAS_CORETYPE")) if var in os.environ)
    return dev, "pytorch %s (%d threads%s, %s%s)" % (
        torch.__version__, torch.get_num_threads(), ", oneDNN" if torch.backends.mkldnn.is_available() else "", malloc, isa)
