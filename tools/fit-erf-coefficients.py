#!/usr/bin/python3
"""Derives the polynomial coefficients of the erf approximation in src/Kernels/Cpu/Ops/Activations.cs.

The kernel evaluates  Phi2(z) = 1 + erf(z)  in two regions of |z|:
  |z| < 1:   erf(z) = z * P(z^2)                          P of degree 6 in s = z^2 on [0, 1]
  |z| >= 1:  erfc(|z|) = t * exp(-z^2 + R(u))             t = 1/|z|, u = (2t - 1.1) / 0.9 maps t in [0.1, 1]
                                                           to [-1, 1]; R of degree 10 in u
Fitting R in u rather than t keeps the monomial coefficients below 1, so evaluating R in float loses
little to cancellation. Beyond |z| = 10 (t < 0.1) the kernel clamps t to 0.1; exp(-z^2) < 4e-44 there.

Method: least squares at 3000 Chebyshev nodes, re-weighted (Lawson's algorithm) towards the minimax
fit; the targets are computed with Python's float64 math.erf / math.erfc. Prints the coefficients and
the approximation error measured in float64 on a dense grid (no float32 rounding): both are below 1e-8.
Run: /usr/bin/python3 tools/fit-erf-coefficients.py
"""
import math

import numpy as np

T_MIN = 0.1


def chebyshev_nodes(a, b, n):
    k = np.arange(n)
    return (a + b) / 2 + (b - a) / 2 * np.cos(np.pi * (2 * k + 1) / (2 * n))


def lawson_fit(xs, ys, degree, iterations=40):
    """Coefficients c[0..degree] of sum c[i] x^i, near-minimax in absolute error over xs."""
    a = np.stack([xs ** i for i in range(degree + 1)], axis=1)
    w = np.ones_like(xs)
    for _ in range(iterations):
        c, *_ = np.linalg.lstsq(a * w[:, None], ys * w, rcond=None)
        w = w * np.sqrt(np.abs(a @ c - ys)) + 1e-300
        w /= w.max()
    return c


def fit_small():
    s = chebyshev_nodes(0.0, 1.0, 3000)
    z = np.sqrt(s)
    y = np.array([math.erf(v) / v for v in z])
    return lawson_fit(s, y, 6)


def fit_large():
    t = chebyshev_nodes(T_MIN, 1.0, 3000)
    u = (2 * t - (1 + T_MIN)) / (1 - T_MIN)
    y = np.array([math.log(math.erfc(1 / v) / v) + 1 / (v * v) for v in t])
    return lawson_fit(u, y, 10)


def main():
    p = fit_small()
    r = fit_large()
    zs = np.linspace(1e-6, 1.0, 100001)
    err_small = max(abs(z * np.polyval(p[::-1], z * z) - math.erf(z)) for z in zs)
    zl = np.linspace(1.0, 10.0, 200001)
    worst_abs = worst_rel = 0.0
    for z in zl:
        t = 1 / z
        u = (2 * t - (1 + T_MIN)) / (1 - T_MIN)
        approx = t * math.exp(-z * z + np.polyval(r[::-1], u))
        exact = math.erfc(z)
        worst_abs = max(worst_abs, abs(approx - exact))
        worst_rel = max(worst_rel, abs(approx / exact - 1))
    print("P (erf(z)/z in s = z^2, ascending):")
    for c in p:
        print(f"    {c:.9e}f,")
    print("R (log(erfc(z)/t) + z^2 in u, ascending):")
    for c in r:
        print(f"    {c:.9e}f,")
    print(f"max |error| of erf, |z| < 1: {err_small:.2e}")
    print(f"max |error| of erfc, 1 <= |z| <= 10: {worst_abs:.2e} (relative {worst_rel:.2e})")


if __name__ == "__main__":
    main()
