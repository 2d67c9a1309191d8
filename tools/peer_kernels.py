#!/usr/bin/env python3
"""PyTorch side of bench_kernels: times the shapes it receives on stdin (a JSON list) the way a
PyTorch user would run them, and prints one JSON line per shape with the median time in ms.

conv2d_fwd_bwd: y = conv2d(x, w, stride, padding); y.backward(gy) with x and w requiring grad
(grads reset to None each repetition, as an optimizer's zero_grad(set_to_none=True) does).
gemm: torch.mm(a, b).
"""
import argparse
import json
import statistics
import sys
import time

import torch


def time_it(fn, min_time, warmup=2, min_reps=5, max_reps=1000):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= min_reps and time.perf_counter() - start >= min_time:
            break
    return statistics.median(times), min(times), len(times)


def conv_case(s, dev):
    g = torch.Generator(device="cpu").manual_seed(7)
    x = torch.randn(s["n"], s["c"], s["h"], s["w"], generator=g).to(dev).requires_grad_()
    w = (torch.randn(s["o"], s["c"], s["k"], s["k"], generator=g) * 0.05).to(dev).requires_grad_()
    y = torch.nn.functional.conv2d(x, w, stride=s["stride"], padding=s["pad"])
    gy = torch.randn(y.shape, generator=g).to(dev)

    def step():
        x.grad = None
        w.grad = None
        torch.nn.functional.conv2d(x, w, stride=s["stride"], padding=s["pad"]).backward(gy)

    return step


def gemm_case(s, dev):
    g = torch.Generator(device="cpu").manual_seed(7)
    a = torch.randn(s["m"], s["k"], generator=g).to(dev)
    b = torch.randn(s["k"], s["n"], generator=g).to(dev)

    def step():
        with torch.no_grad():
            torch.mm(a, b)

    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--min-time", type=float, default=1.0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    peer = "pytorch %s (%d threads%s)" % (
        torch.__version__, torch.get_num_threads(), ", oneDNN" if torch.backends.mkldnn.is_available() else "")
    for s in json.load(sys.stdin):
        make = {"conv2d_fwd_bwd": conv_case, "gemm": gemm_case}[s["bench"]]
        fn = make(s, dev)

        def step():
            fn()
            sync()

        ms, min_ms, reps = time_it(step, args.min_time)
        print(json.dumps({"bench": s["bench"], "shape": s["shape"], "ms": ms, "min_ms": min_ms, "reps": reps,
                          "peer": peer}), flush=True)


if __name__ == "__main__":
    main()
