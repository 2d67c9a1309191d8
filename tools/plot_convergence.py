#!/usr/bin/env python3
"""Plots bench_convergence's JSON lines: linear-probe (solid) and kNN (dashed) test accuracy
against pretraining steps on the target (log x), one colour per kind of run.
Usage: plot_convergence.py convergence.jsonl out.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows = [json.loads(l) for l in open(src) if l.strip()]
    runs = [r for r in rows if r.get("bench") == "convergence"]
    names = {"hpt": "HPT (base -> target)", "hpt_bn": "HPT-BN (BN + head only)", "scratch": "scratch (random init)"}
    colours = {"hpt": "tab:blue", "hpt_bn": "tab:green", "scratch": "tab:red"}
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    for mode in ("hpt", "hpt_bn", "scratch"):
        pts = sorted((r["steps"], r["probe_test_acc"], r["knn_test_acc"]) for r in runs if r["mode"] == mode)
        if not pts:
            continue
        xs = [p[0] for p in pts]
        pct = [[float("nan") if v is None else 100 * v for v in (p[1], p[2])] for p in pts]  # null: not measured
        ax.plot(xs, [p[0] for p in pct], "o-", color=colours[mode], label=names[mode] + ", linear probe")
        ax.plot(xs, [p[1] for p in pct], "x--", color=colours[mode], alpha=0.6, label=names[mode] + ", kNN")
    target = runs[0]["target"].rstrip("/").split("/")[-1] if runs else "?"
    # Each mode's own speedup over scratch, or "-" when it did not reach scratch's best accuracy.
    label = {"hpt": "HPT", "hpt_bn": "HPT-BN"}
    parts = ["%s %s" % (label[r["mode"]], "%.0fx" % r["speedup"] if r.get("speedup") else "-")
             for r in rows if r.get("bench") == "convergence_speedup" and r.get("mode") in label]
    title = "Pretraining on %s" % target
    if parts:
        title += "\nspeedup over scratch: " + ", ".join(parts)
    ax.set_xscale("log")
    ax.set_xlabel("pretraining steps on the target (each point its own cosine run)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(dst)
    print("wrote", dst)


if __name__ == "__main__":
    main()
