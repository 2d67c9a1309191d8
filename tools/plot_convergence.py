#!/usr/bin/env python3
"""Plots bench_convergence's JSON lines: linear-probe (solid) and kNN (dashed) test accuracy
against pretraining steps on the target (log x), one colour per kind of run. With several seeds,
each point is the mean over seeds and its bar one standard deviation either side.
Usage: plot_convergence.py convergence.jsonl out.png"""
import json
import statistics
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
        xs = sorted({r["steps"] for r in runs if r["mode"] == mode})
        if not xs:
            continue
        for key, fmt, alpha, what in (("probe_test_acc", "o-", 1.0, "linear probe"), ("knn_test_acc", "x--", 0.6, "kNN")):
            means, sds = [], []
            for x in xs:
                # null: not measured, which leaves the point unmeasured
                vals = [float("nan") if r[key] is None else 100 * r[key] for r in runs if r["mode"] == mode and r["steps"] == x]
                means.append(statistics.fmean(vals))
                sds.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
            ax.errorbar(xs, means, yerr=sds if any(sds) else None, fmt=fmt, color=colours[mode], alpha=alpha, capsize=3,
                        label=names[mode] + ", " + what)
    target = runs[0]["target"].rstrip("/").split("/")[-1] if runs else "?"
    # Each mode's own speedup over scratch, or "-" when it did not reach scratch's best accuracy.
    label = {"hpt": "HPT", "hpt_bn": "HPT-BN"}
    parts = ["%s %s" % (label[r["mode"]], "%.0fx" % r["speedup"] if r.get("speedup") else "-")
             for r in rows if r.get("bench") == "convergence_speedup" and r.get("mode") in label]
    seeds = len({r.get("seed") for r in runs})
    title = "Pretraining on %s" % target + (" (mean of %d seeds)" % seeds if seeds > 1 else "")
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
