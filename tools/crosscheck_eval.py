#!/usr/bin/python3
"""Recomputes hpt's evaluation from features that `hpt_run embed` wrote, with numpy and scikit-learn
(Debian: python3-sklearn), so that hpt's reported numbers can be checked independently.

    hpt_run embed --checkpoint C --data D --split train --out f_train.npy   (and val, test)
    tools/crosscheck_eval.py f        # reads f_{train,val,test}.npy and their .labels.npy

kNN: cosine similarity, the k nearest training features vote with weight exp(sim / t); it should
equal hpt's kNN accuracy exactly (on datasets of at most eval.max_train training images).
Probe: scikit-learn's LogisticRegression on standardised features, C chosen on the val split; a
reference for hpt's SGD-trained linear probe, which need not match it exactly.
"""
import argparse
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression


def split(prefix, name):
    return np.load(f"{prefix}_{name}.npy"), np.load(f"{prefix}_{name}.npy.labels.npy")


def knn_accuracy(xtr, ytr, xte, yte, classes, k, t):
    a = xtr / np.maximum(np.linalg.norm(xtr, axis=1, keepdims=True), 1e-12)
    b = xte / np.maximum(np.linalg.norm(xte, axis=1, keepdims=True), 1e-12)
    sims = b @ a.T
    k = min(k, len(a))
    right = 0
    for i, s in enumerate(sims):
        near = np.lexsort((np.arange(len(s)), -s))[:k]  # ties: the lower index first
        w = np.exp((s[near].astype(np.float64) - s[near].max()) / t)
        votes = np.zeros(classes)
        np.add.at(votes, ytr[near], w)
        right += int(np.argmax(votes) == yte[i])
    return right / len(yte)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prefix", help="features as PREFIX_{train,val,test}.npy")
    p.add_argument("--knn-k", type=int, default=200)
    p.add_argument("--knn-t", type=float, default=0.1)
    args = p.parse_args()
    (xtr, ytr), (xva, yva), (xte, yte) = (split(args.prefix, s) for s in ("train", "val", "test"))
    classes = int(max(ytr.max(), yva.max() if len(yva) else 0, yte.max()) + 1)
    print(f"train {len(xtr)}, val {len(xva)}, test {len(xte)}, {classes} classes, {xtr.shape[1]} features")
    print(f"majority class of test: {np.bincount(yte).max() / len(yte):.2%}")
    acc = knn_accuracy(xtr, ytr, xte, yte, classes, args.knn_k, args.knn_t)
    print(f"kNN (k {args.knn_k}, t {args.knn_t}): {acc:.2%}")
    mu = xtr.mean(0)
    sd = np.sqrt(((xtr - mu) ** 2).mean(0) + 1e-6)
    best = None
    warnings.filterwarnings("ignore")
    for c in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3, 10, 100):
        m = LogisticRegression(C=c, max_iter=5000).fit((xtr - mu) / sd, ytr)
        val = m.score((xva - mu) / sd, yva) if len(yva) else m.score((xtr - mu) / sd, ytr)
        if best is None or val > best[1]:
            best = (c, val, m.score((xte - mu) / sd, yte))
    print(f"logistic regression (C {best[0]:g}, chosen on val {best[1]:.2%}): test {best[2]:.2%}")


if __name__ == "__main__":
    main()
