"""Products with a thin operand (LoRA adapters and their gradients): replicate / collect.

Pure functions from layouts to plans (entry lists, loop rounds, rotate-and-sum
steps, output layout); :mod:`ccmm` runs them. With S slots, super-slots of bm
lanes (K = S / bm of them) and a thin dimension r <= 64 (r' = next_pow2(r)):

``repeat`` -- U (m x r) @ B (r x p), thin inner dimension:
    C = U's r columns repeated every r' super-slots (one map, 1 level; free
    after a ``diag`` product, whose output is already repeated that way),
    D[c, d][i + bm t] = B[(t + d) mod r', c K + t] for every lane i (B's rows
    split and repeated down the lanes: one map + log2(bm) doublings, once per
    weight when prepared),
    Z_c = sum_{d < r'} rot(C, bm d) (.) D[c, d]: r' - 1 hoisted rotations of C,
    r' ct x ct products per output block, one relinearization each, 1 level.

``rowsum`` -- T^T W for T (n x r) thin and W (n x d), both stored with rows
in lanes (the backward products X^T @ G and (XA)^T @ G):
    C_j = column j of T in every super-slot (one map, 1 level; log2 K
    doublings), P_j = W (.) C_j (1 level), lane sums (log2 n doublings), and
    one map that puts lane 0 of every P_j into lane j (1 level).
    Rotations: r (log2 K + ncb log2 n) plus the two maps.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np

from ..layout import Layout, next_pow2
from .cache import EntryList

MAX_RANK = 64


def _log2(x: int) -> int:
    return int(math.log2(next_pow2(x)))


def repeat_setup(slots: int, lx: Layout, ly, B: int) -> Optional[Dict[str, Any]]:
    """Plan of x @ y with a thin inner dimension (x: (B?, m, n), n <= 64, stored with its
    columns in super-slots, one column block); None when it does not apply."""
    if not isinstance(lx, Layout) or lx.transposed or lx.ncb != 1:
        return None
    _, m, n = lx.matrix
    _, _, p = ly.matrix
    K, bm, br, nrb = lx.K, lx.bm, lx.br, lx.nrb
    nn = next_pow2(n)
    if n > MAX_RANK or nn > K:
        return None
    # C: lanes i of super-slot t <- x[rb br + i, t mod n'] (rows of each row block)
    c_entries = EntryList()
    t = np.arange(K)
    j = t % nn
    okj = j < n
    for rb in range(nrb):
        rows = min(br, m - rb * br)
        i, tt = np.meshgrid(np.arange(rows), t[okj], indexing="ij")
        i, tt = i.reshape(-1), tt.reshape(-1)
        cti, sli = lx.index(0, rb * br + i, tt % nn)
        c_entries.add(rb, i + bm * tt, cti, sli)
    cmap = c_entries.arrays()
    # D[c, d]: row 0 of super-slot t <- y[(t + d) mod n', c K + t]
    ncb_out = -(-p // K)
    bc_out = min(p, K)
    d_entries = EntryList()
    for c in range(ncb_out):
        for d in range(nn):
            jj = (t + d) % nn
            k = c * K + t
            ok = (jj < n) & (k < p) & (t < bc_out)
            if not np.any(ok):
                continue
            cti, sli = ly.index(0, jj[ok], k[ok])
            d_entries.add(c * nn + d, bm * t[ok], cti, sli)
    dmap = d_entries.arrays()
    bx, by = lx.batch, ly.batch
    rounds = []
    for d in range(nn):
        terms = []
        for b in range(B):
            for rb in range(nrb):
                for c in range(ncb_out):
                    terms.append(((b * nrb + rb) * ncb_out + c, (b if bx > 1 else 0) * nrb + rb,
                                  ((b if by > 1 else 0) * ncb_out + c) * nn + d))
        rounds.append((bm * d, 0, np.asarray(terms, dtype=np.int64).reshape(-1)))
    replicate = [-(1 << e) for e in range(_log2(br))]
    out = Layout((B, m, p), slots, bm=bm, br=br, bc=bc_out, clean=True)
    return dict(cmap=cmap, c_cts=nrb, dmap=dmap, d_cts=ncb_out * nn, rounds=rounds, replicate=replicate, out=out,
                nn=nn, outputs=B * nrb * ncb_out)


def rowsum_setup(slots: int, lt: Layout, lw: Layout, B: int, thin_left: bool) -> Optional[Dict[str, Any]]:
    """Plan of M = T^T W (r x d) for T (n x r) and W (n x d), both physical (rows in lanes),
    one row block each and the same lanes; None when it does not apply.

    ``lt`` / ``lw`` are the *physical* layouts (not transposed). The output is
    M stored (lanes j, super-slots k of W): returned as M (thin_left: x = T^T)
    or as M^T (x = W^T, y = T) by the layout's transposed flag.
    """
    for lay in (lt, lw):
        if not isinstance(lay, Layout) or lay.transposed or lay.nrb != 1:
            return None
    _, n, r = lt.matrix
    _, n2, d = lw.matrix
    if n != n2 or r > MAX_RANK or lt.bm != lw.bm or lt.ncb != 1 or r > lw.bm:
        return None
    K, bm = lw.K, lw.bm
    bw, bt = lw.batch, lt.batch
    ncb = lw.ncb
    # C_j: lanes i of super-slot 0 <- T[i, j]
    i, j = np.meshgrid(np.arange(n), np.arange(r), indexing="ij")
    i, j = i.reshape(-1), j.reshape(-1)
    cti, sli = lt.index(0, i, j)
    cmap = (j, i, cti, sli)
    spread = [-bm * (1 << e) for e in range(_log2(K))]
    terms = []
    for b in range(B):
        for jj in range(r):
            for a in range(ncb):
                terms.append(((b * r + jj) * ncb + a, (b if bw > 1 else 0) * ncb + a, (b if bt > 1 else 0) * r + jj))
    rounds = [(0, 0, np.asarray(terms, dtype=np.int64).reshape(-1))]
    lanesum = [1 << e for e in range(_log2(n))]
    # place: out ct a, slot j + bm k <- in ct (j, a), slot bm k
    place_entries = EntryList()
    for jj in range(r):
        for a in range(ncb):
            k = np.arange(min(lw.bc, d - a * lw.bc))
            place_entries.add(a, jj + bm * k, jj * ncb + a, bm * k)
    place = place_entries.arrays()
    phys = Layout((B, r, d), slots, bm=bm, br=r, bc=lw.bc, clean=True)
    out = phys if thin_left else phys.T
    return dict(cmap=cmap, c_cts=r, spread=spread, rounds=rounds, lanesum=lanesum, place=place, place_in=r * ncb,
                place_out=ncb, out=out, outputs=B * r * ncb, thin_left=thin_left)
