#!/usr/bin/env python3
"""PyTorch side of bench_kernels: times the shapes it receives on stdin (a JSON list) the way a
PyTorch user would run them, and prints one JSON line per shape with the median time in ms.

conv2d_fwd_bwd: y = conv2d(x, w, stride, padding); y.backward(gy) with x and w requiring grad
(grads reset to None each repetition, as an optimizer's zero_grad(set_to_none=True) does).
conv2d_fwd: conv2d(x, w) without autograd.
conv2d_bwd: the backward alone: torch.autograd.grad(y, (x, w), gy) on a kept graph.
bn_fwd / bn_bwd: batch_norm in training mode (momentum 0.1, eps 1e-5, affine), forward without
autograd, and the backward alone for (x, weight, bias).
gemm: torch.mm(a, b).

On CUDA: cudnn.benchmark = True (PyTorch's measured algorithm choice, as hpt's cudnnFind), TF32
for matmul and cuDNN as given by --tf32 (hpt's setting), timing by CUDA events per repetition
after warm-up; both settings are stated in the "peer" field.
"""
import json
import statistics

import torch
import torch.nn.functional as F

import peer_setup  # tools/, beside this script


BATCH = 8  # calls per timed sample, as bench/kernels_cuda.cpp's kBatch


def time_cuda(fn, min_time, warmup=3, min_reps=10, max_reps=1000):
    """Each sample: BATCH calls back to back between two events, divided by BATCH. One call per
    pair of events timed this process's Python and autograd dispatch, issued on an idle stream, as
    GPU time (the small rows were mostly that)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    while len(times) < max_reps and (len(times) < min_reps or sum(times) * BATCH < min_time * 1e3):
        start.record()
        for _ in range(BATCH):
            fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / BATCH)
    return statistics.median(times), min(times), len(times)


def randn(shape, dev, g, scale=1.0):
    if dev.type == "cuda":
        return torch.randn(*shape, device=dev, generator=g) * scale
    return (torch.randn(*shape, generator=g) * scale).to(dev)


def conv_tensors(s, dev, g):
    x = randn((s["n"], s["c"], s["h"], s["w"]), dev, g)
    w = randn((s["o"], s["c"], s["k"], s["k"]), dev, g, 0.05)
    oh = (s["h"] + 2 * s["pad"] - s["k"]) // s["stride"] + 1
    ow = (s["w"] + 2 * s["pad"] - s["k"]) // s["stride"] + 1
    gy = randn((s["n"], s["o"], oh, ow), dev, g)
    return x, w, gy


def conv_case(s, dev, g):
    x, w, gy = conv_tensors(s, dev, g)
    x.requires_grad_()
    w.requires_grad_()

    def step():
        x.grad = None
        w.grad = None
        F.conv2d(x, w, stride=s["stride"], padding=s["pad"]).backward(gy)

    return step


def conv_fwd_case(s, dev, g):
    x, w, _ = conv_tensors(s, dev, g)

    def step():
        with torch.no_grad():
            F.conv2d(x, w, stride=s["stride"], padding=s["pad"])

    return step


def conv_bwd_case(s, dev, g):
    x, w, gy = conv_tensors(s, dev, g)
    x.requires_grad_()
    w.requires_grad_()
    y = F.conv2d(x, w, stride=s["stride"], padding=s["pad"])
    return lambda: torch.autograd.grad(y, (x, w), gy, retain_graph=True)


def bn_tensors(s, dev, g):
    x = randn((s["n"], s["c"], s["h"], s["w"]), dev, g)
    gy = randn((s["n"], s["c"], s["h"], s["w"]), dev, g)
    c = s["c"]
    weight, bias = torch.ones(c, device=dev), torch.zeros(c, device=dev)
    rm, rv = torch.zeros(c, device=dev), torch.ones(c, device=dev)
    return x, gy, weight, bias, rm, rv


def bn_fwd_case(s, dev, g):
    x, _, weight, bias, rm, rv = bn_tensors(s, dev, g)

    def step():
        with torch.no_grad():
            F.batch_norm(x, rm, rv, weight, bias, training=True, momentum=0.1, eps=1e-5)

    return step


def bn_bwd_case(s, dev, g):
    x, gy, weight, bias, rm, rv = bn_tensors(s, dev, g)
    for t in (x, weight, bias):
        t.requires_grad_()
    y = F.batch_norm(x, rm, rv, weight, bias, training=True, momentum=0.1, eps=1e-5)
    return lambda: torch.autograd.grad(y, (x, weight, bias), gy, retain_graph=True)


def gemm_case(s, dev, g):
    a = randn((s["m"], s["k"]), dev, g)
    b = randn((s["k"], s["n"]), dev, g)

    def step():
        with torch.no_grad():
            torch.mm(a, b)

    return step


def gemm_bwd_case(s, dev, g):
    """The backward of C = A B: dA = dC B^T and dB = A^T dC, as autograd runs them."""
    a = randn((s["m"], s["k"]), dev, g).requires_grad_()
    b = randn((s["k"], s["n"]), dev, g).requires_grad_()
    c = torch.mm(a, b)
    gc = randn((s["m"], s["n"]), dev, g)
    return lambda: torch.autograd.grad(c, (a, b), gc, retain_graph=True)


def info_nce_case(s, dev, g):
    """MoCo's usual formulation: einsum for the positive and negative logits, cat, cross-entropy,
    backward to q (the queue stored [D, K] as in the reference code)."""
    n, d, k_ = s["n"], s["d"], s["k"]
    q = F.normalize(randn((n, d), dev, g), dim=1).requires_grad_()
    k = F.normalize(randn((n, d), dev, g), dim=1)
    queue = F.normalize(randn((d, k_), dev, g), dim=0)
    labels = torch.zeros(n, dtype=torch.long, device=dev)

    def step():
        q.grad = None
        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, queue])
        logits = torch.cat([l_pos, l_neg], dim=1) / s["t"]
        F.cross_entropy(logits, labels).backward()

    return step


def momentum_params(s, dev):
    import torchvision
    m = getattr(torchvision.models, "resnet%d" % s["depth"])()
    dim = m.fc.in_features
    m.fc = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Linear(dim, 128))
    qs = [p.detach().to(dev) for p in m.parameters()]
    return qs, [p.clone() for p in qs]


def momentum_loop_case(s, dev, g):
    """The reference's update: one tensor at a time, param_k = param_k * m + param_q * (1 - m)."""
    qs, ks = momentum_params(s, dev)
    m = s["m"]

    def step():
        with torch.no_grad():
            for pk, pq in zip(ks, qs):
                pk.data = pk.data * m + pq.data * (1.0 - m)

    return step


def momentum_foreach_case(s, dev, g):
    """The same with PyTorch's multi-tensor ops."""
    qs, ks = momentum_params(s, dev)
    m = s["m"]

    # One pass where PyTorch has it (2.x: k + (q - k)(1 - m)), else its two passes (1.13).
    lerp = getattr(torch, "_foreach_lerp_", None)

    def step():
        with torch.no_grad():
            if lerp is not None:
                lerp(ks, qs, 1.0 - m)
            else:
                torch._foreach_mul_(ks, m)
                torch._foreach_add_(ks, qs, alpha=1.0 - m)

    return step


CASES = {"info_nce_fwd_bwd": info_nce_case, "momentum_update_loop": momentum_loop_case,
         "momentum_update_foreach": momentum_foreach_case, "conv2d_fwd_bwd": conv_case, "conv2d_fwd": conv_fwd_case, "conv2d_bwd": conv_bwd_case,
         "bn_fwd": bn_fwd_case, "bn_bwd": bn_bwd_case, "gemm": gemm_case, "gemm_bwd": gemm_bwd_case}


def main():
    args = peer_setup.parse_args(__doc__, 1.0)
    dev, peer = peer_setup.setup(args.device, args.threads, args.tf32)
    current, fn = None, None
    for s in peer_setup.cases(args):
        key = (s["bench"], s["shape"])
        if key != current:  # a served case is timed in several rounds: build it once
            fn = None
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            g = torch.Generator(device=dev if dev.type == "cuda" else "cpu").manual_seed(7)
            fn, current = CASES[s["bench"]](s, dev, g), key
        min_time = s.get("min_time", args.min_time)
        if dev.type == "cuda":
            ms, min_ms, reps = time_cuda(fn, min_time)
        else:
            ms, min_ms, reps, _ = peer_setup.time_wall(fn, min_time)
        print(json.dumps({"bench": s["bench"], "shape": s["shape"], "ms": ms, "min_ms": min_ms, "reps": reps,
                          "peer": peer}), flush=True)


if __name__ == "__main__":
    main()
