#!/usr/bin/env python3
"""Fit the same spectra with scipy.optimize.nnls, one call per spectrum, for comparison.

Reads an unmix library CSV (axis column, one column per phase) and spectra as .npy (one
spectrum per row) or CSV (one spectrum per column), fits the first --limit spectra with
scipy's NNLS (optionally with the same Chebyshev background, which scipy's NNLS cannot leave
free in sign, so it is split into +T_d and -T_d columns), and prints spectra per second.
With --compare OUT.csv (from `unmix fit`) it also prints the largest difference in the
phase fractions.

    python3 host/scripts/scipy_nnls.py --library library.csv --spectra spectra.npy \
        --limit 4000 [--background 2] [--compare out.csv]

Needs numpy and scipy (pip install numpy scipy); the unmix tests do not.
"""

import argparse
import csv
import sys
import time

import numpy as np
from scipy.optimize import nnls


def read_columns(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    header, data = rows[0], np.array(rows[1:], dtype=np.float64)
    return header[1:], data[:, 1:]


def chebyshev(n, degree):
    t = (2.0 * np.arange(n) - (n - 1)) / max(n - 1, 1)
    return np.polynomial.chebyshev.chebvander(t, degree)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", required=True)
    ap.add_argument("--spectra", required=True)
    ap.add_argument("--limit", type=int, default=4000)
    ap.add_argument("--background", type=int, default=None)
    ap.add_argument("--compare", default=None)
    args = ap.parse_args()

    names, library = read_columns(args.library)
    if args.spectra.endswith(".npy"):
        spectra = np.load(args.spectra, mmap_mode="r")
        spectrum_names = [str(i) for i in range(spectra.shape[0])]
    else:
        spectrum_names, columns = read_columns(args.spectra)
        spectra = columns.T
    count = min(args.limit, spectra.shape[0])

    x = library
    if args.background is not None:
        t = chebyshev(library.shape[0], args.background)
        x = np.hstack([library, t, -t])
    k = library.shape[1]

    start = time.perf_counter()
    fractions = np.zeros((count, k))
    for i in range(count):
        w, _ = nnls(x, np.asarray(spectra[i], dtype=np.float64))
        total = w[:k].sum()
        if total > 0:
            fractions[i] = w[:k] / total
    elapsed = time.perf_counter() - start
    print(f"scipy.optimize.nnls: {count} spectra x {library.shape[0]} channels, {k} phases: "
          f"{elapsed:.3f} s, {count / elapsed:.0f} spectra/s (one core)")

    if args.compare:
        with open(args.compare, newline="") as f:
            rows = {r["spectrum"]: r for r in csv.DictReader(f)}
        worst = 0.0
        for i in range(count):
            row = rows.get(spectrum_names[i])
            if row is None or row["status"] == "error":
                continue
            for j, name in enumerate(names):
                worst = max(worst, abs(float(row["fraction_" + name]) - fractions[i, j]))
        print(f"largest fraction difference from {args.compare}: {worst:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
