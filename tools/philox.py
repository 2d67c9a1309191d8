"""Philox-4x32-10 in numpy, bit-identical to engine/core/philox.h, and the "seeded uniform" rule
the golden scripts use to fill tensors so that the C++ tests can regenerate the same values
instead of committing large weight files:

    u_j = (philox(seed, stream, position=j).v[0] >> 8) * 2^-24          (exact in float32)
    value_j = float32(lo + (hi - lo) * u_j)                             (computed in float64)
"""
import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
MASK = np.uint64(0xFFFFFFFF)


def philox4x32(c0, c1, c2, c3, k0, k1):
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint32) for c in (c0, c1, c2, c3))
    k0 = np.uint32(k0)
    k1 = np.uint32(k1)
    for _ in range(10):
        p0 = M0 * c0.astype(np.uint64)
        p1 = M1 * c2.astype(np.uint64)
        hi0, lo0 = (p0 >> np.uint64(32)).astype(np.uint32), (p0 & MASK).astype(np.uint32)
        hi1, lo1 = (p1 >> np.uint64(32)).astype(np.uint32), (p1 & MASK).astype(np.uint32)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = np.uint32((int(k0) + int(W0)) & 0xFFFFFFFF)
        k1 = np.uint32((int(k1) + int(W1)) & 0xFFFFFFFF)
    return c0, c1, c2, c3


def philox_at(seed, stream, positions):
    pos = np.asarray(positions, dtype=np.uint64)
    return philox4x32((pos & MASK).astype(np.uint32), (pos >> np.uint64(32)).astype(np.uint32),
                      np.full(pos.shape, stream & 0xFFFFFFFF, dtype=np.uint32),
                      np.full(pos.shape, (stream >> 32) & 0xFFFFFFFF, dtype=np.uint32),
                      seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)


def seeded_uniform(shape, seed, stream, lo, hi):
    n = int(np.prod(shape)) if len(shape) else 1
    x = philox_at(seed, stream, np.arange(n, dtype=np.uint64))[0]
    u = (x >> np.uint32(8)).astype(np.float64) * (2.0 ** -24)
    return (lo + (hi - lo) * u).astype(np.float32).reshape(shape)


def fill_rule(name, shape):
    """The (lo, hi) range a golden gives a tensor: He-uniform weights, BN weights near 1, small
    biases and means, variances near 1. The C++ side reads these ranges from the golden file."""
    if name.endswith("running_var"):
        return 0.5, 1.5
    if name.endswith("running_mean") or name.endswith("bias"):
        return -0.1, 0.1
    if len(shape) == 1:  # BN weight
        return 0.5, 1.5
    fan_in = int(np.prod(shape[1:]))
    b = float(np.sqrt(6.0 / fan_in))
    return -b, b
