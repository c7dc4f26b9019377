"""Fits step_cost_model's features to step_shapes' output and says how well each form predicts.

usage: build/tools/step_shapes/step_shapes MODEL < tools/step_shapes/shapes.txt > steps.txt
       /opt/troupe-oracle/bin/python tools/step_shapes/fit.py steps.txt [median|min]

Prints, for the form without the K/V feature (fixed, token, pair) and with it (+ K/V position),
the coefficients of a relative least-squares fit over the steps with chunks of <= 128 tokens,
and predicted/measured per group of shapes (decode-only, small chunks, long contexts). Then,
with the fitted K/V form, simulates issue 10's scenario (4 streams from context 60, one token
each a step, a 2,000-token prompt cut so that every step takes at most the factor times the
streams' step now -- troupe's rule -- or before the prompt) and prints the prompt's time over
its unchunked time.
"""
import sys

import numpy as np


def features(d, l, n, p):
    # d decodes at context l (one token at position l each), one chunk of n tokens at p
    pairs = d * (l + 1) + n * p + n * (n + 1) / 2
    kv = d * (l + 1) + (p + n if n > 0 else 0)
    return [1, d + n, pairs, kv]


def main():
    rows = [list(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
    col = 5 if len(sys.argv) > 2 and sys.argv[2] == "min" else 4
    x = np.array([features(*r[:4]) for r in rows])
    y = np.array([r[col] for r in rows]) / 1e3
    used = np.array([r[2] <= 128 for r in rows])
    for name, cols in (("fixed+token+pair", [0, 1, 2]), ("fixed+token+pair+kv", [0, 1, 2, 3])):
        c, *_ = np.linalg.lstsq(x[used][:, cols] / y[used, None], np.ones(used.sum()), rcond=None)
        ratio = (x[:, cols] @ c) / y
        print(name, "coefficients (s):", " ".join("%.3g" % v for v in c))
        groups = {}
        for r, q in zip(rows, ratio):
            kind = ("decode" if r[2] == 0 else "prefill alone" if r[0] == 0
                    else "chunk <= 16" if r[2] <= 16 else "chunk > 16")
            far = " at >= 1000 positions" if r[3] >= 1000 or r[1] >= 1000 else ""
            groups.setdefault(kind + far, []).append(q)
        for k, v in sorted(groups.items()):
            print("  %-32s n=%3d predicted/measured min %.2f median %.2f max %.2f"
                  % (k, len(v), min(v), float(np.median(v)), max(v)))
    for factor in (2.0, 2.5, 3.0):
        for anchor in ("now", "before"):
            ratio, steps, growth = simulate(c, factor, anchor)
            print("factor %.1f, steps <= factor x the streams' step %-6s: prompt %.2fx unchunked, "
                  "%d steps, the streams' step grows %.2fx" % (factor, anchor, ratio, steps, growth))


def simulate(c, factor, anchor, prompt=2000, context=60, streams=4):
    fixed, tok, pair, kv = c
    decodes = lambda l: fixed + streams * (tok + (l + 1) * (pair + kv))  # noqa: E731
    chunk = lambda p, n: n * tok + pair * (n * p + n * (n + 1) / 2) + kv * (p + n)  # noqa: E731
    before, done, l, total, steps = decodes(context), 0, context, 0.0, 0
    while done < prompt:
        budget = factor * (before if anchor == "before" else decodes(l))
        n = 1
        while done + n < prompt and decodes(l) + chunk(done, n + 1) <= budget:
            n += 1
        total += decodes(l) + chunk(done, n)
        done, l, steps = done + n, l + 1, steps + 1
    return total / (fixed + chunk(0, prompt)), steps, decodes(l) / before


if __name__ == "__main__":
    main()
