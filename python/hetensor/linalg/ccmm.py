"""Encrypted x encrypted products: route candidates, JKLS with extension, broadcast diagonals,
prepared right operands.

Routes are chosen from shapes, layouts and levels only, by predicted key
switches (``candidates``); see docs/LINALG.md.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from ..layout import Layout, next_pow2
from . import runmode as rm
from .cache import EntryList, cache, entry_plan, plan as cached_plan
from .cost import MatmulCost, publish
from .lora import repeat_setup, rowsum_setup
from .moves import is_matrix, layout_of, lkey, make, relayout, relayout_plan, to_matrix


def chain_sides(ctx, cand) -> Tuple[bool, bool]:
    """(chain_a, chain_b) of a product's loop under the context's key policy."""
    if cache(ctx).get("keys", "exact") != "few":
        return False, False
    if cand["method"] == "jkls":
        side = cand["setup"]["loop"][1]
        return (side == "b", side == "a")
    return True, False


def rounds_of(setup) -> list:
    return [tuple(int(v) if i != 2 else v for i, v in enumerate(r)) for r in setup["rounds"]]


def loop_steps(ctx, cand) -> List[int]:
    ca, cb = chain_sides(ctx, cand)
    return list(_core.linalg_bilinear_steps(int(ctx.slots), rounds_of(cand["setup"]), bool(ca), bool(cb)))


def _batch_dims(bx: int, by: int) -> int:
    if bx == by or by == 1 or bx == 1:
        return max(bx, by)
    raise ValueError(f"cannot multiply batches of {bx} and {by} matrices")


def _tile_candidates(x: int) -> List[int]:
    return sorted({-(-x // k) for k in list(range(1, 65)) + [1 << e for e in range(7, 20)] if k <= x})


def _jkls_tile_list(slots: int, m: int, n: int, p: int, keep: int = 6, bms: Sequence[int] = ()):
    """Tilings (mt, nt, pt, bh) that fit, best first by a quick estimate of key switches."""
    cands = []
    for nt in _tile_candidates(n):
        for mt in _tile_candidates(m):
            bh = next_pow2(mt + nt - 1)
            if bh > slots:
                continue
            for pt in _tile_candidates(p):
                if bh * (nt + pt - 1) > slots:
                    continue
                nrt, nc, nq = -(-m // mt), -(-n // nt), -(-p // pt)
                loop = 0.6 * (min(nrt, nq) * nc * nt + max(nrt, nq) * nc * 2 * math.sqrt(nt)) + nrt * nq * math.sqrt(nt)
                maps = 6.0 * math.sqrt(mt + nt + pt) * (nrt * nc + nc * nq)
                score = loop + maps + 0.1 * nrt * nq * nc * nt
                cands.append((score, mt, nt, pt, bh))
    if not cands:
        raise ValueError(f"no tiling of a {m}x{n} @ {n}x{p} product fits {slots} slots")
    cands.sort()
    chosen = [c[1:] for c in cands[:keep]]
    # also the best tilings whose super-slots match an operand's (cheap sigma / tau maps)
    for bm in {b for b in bms if b}:
        same = [c[1:] for c in cands if c[4] == bm][:2]
        chosen += [c for c in same if c not in chosen]
    return chosen


def _jkls_loop(nt: int, bh: int, a_cts: int, b_cts: int, outputs: int):
    """(T, side, predicted weight) of the giant/baby split of the loop over t = g T + b."""
    best = None
    for T in range(1, nt + 1):
        groups = -(-nt // T)
        for side in ("b", "a"):
            a_rot, b_rot = (nt, T) if side == "b" else (T, nt)
            w = 0.6 * (a_cts * (a_rot - 1) + b_cts * (b_rot - 1)) + outputs * (2 * groups - 1)
            if best is None or w < best[2] - 1e-9:
                best = (T, side, w)
    return best


def _jkls_setup(slots: int, lx, ly, B: int, tiles):
    """Maps and rounds of the JKLS product for layouts lx (B?, m, n), ly (B?, n, p) and tiles (mt, nt, pt, bh)."""
    _, m, n = lx.matrix
    _, _, p = ly.matrix
    mt, nt, pt, bh = tiles
    nrt, nc, nq = -(-m // mt), -(-n // nt), -(-p // pt)
    ntc = [min(nt, n - c * nt) for c in range(nc)]
    # sigma: A(rt, c)[i + bh c'] = X[rt mt + i, c nt + (i + c') mod ntc]
    sigma_entries = EntryList()
    for rt in range(nrt):
        rows = min(mt, m - rt * mt)
        for c in range(nc):
            i, cp = np.meshgrid(np.arange(rows), np.arange(ntc[c] + pt - 1), indexing="ij")
            i, cp = i.reshape(-1), cp.reshape(-1)
            k = c * nt + (i + cp) % ntc[c]
            cti, sli = lx.index(0, rt * mt + i, k)
            sigma_entries.add(rt * nc + c, i + bh * cp, cti, sli)
    sigma = sigma_entries.arrays()
    # tau: B(c, q)[r + bh j] = Y[c nt + (r + j) mod ntc, q pt + j]
    tau_entries = EntryList()
    for c in range(nc):
        for q in range(nq):
            cols = min(pt, p - q * pt)
            r, j = np.meshgrid(np.arange(mt + ntc[c] - 1), np.arange(cols), indexing="ij")
            r, j = r.reshape(-1), j.reshape(-1)
            k = c * nt + (r + j) % ntc[c]
            cti, sli = ly.index(0, k, q * pt + j)
            tau_entries.add(c * nq + q, r + bh * j, cti, sli)
    tau = tau_entries.arrays()
    bx, by = lx.batch, ly.batch
    outputs = B * nrt * nq
    T, side, loop_w = _jkls_loop(nt, bh, bx * nrt * nc, by * nc * nq, outputs)
    rounds = []
    for t in range(nt):
        terms = []
        for b in range(B):
            for rt in range(nrt):
                for q in range(nq):
                    for c in range(nc):
                        if t < ntc[c]:
                            terms.append(((b * nrt + rt) * nq + q,
                                          ((b if bx > 1 else 0) * nrt + rt) * nc + c,
                                          ((b if by > 1 else 0) * nc + c) * nq + q))
        g, bb = divmod(t, T)
        if side == "b":  # rot(A, bh t) rot(B, t) = rot(rot(A, bh t - gT) rot(B, b), gT)
            a_step, b_step, outer = bh * t - g * T, bb, g * T
        else:            # ... = rot(rot(A, bh b) rot(B, t - bh gT), bh gT)
            a_step, b_step, outer = bh * bb, t - bh * g * T, bh * g * T
        rounds.append((a_step, b_step, np.asarray(terms, dtype=np.int64).reshape(-1), outer))
    out = Layout((B, m, p), slots, bm=bh, br=mt, bc=pt, clean=False)
    return dict(tiles=(mt, nt, pt, bh), counts=(nrt, nc, nq), sigma=sigma, tau=tau, rounds=rounds, out=out,
                loop=(T, side, loop_w))


def _diag_setup(slots: int, lx: Layout, ly, B: int, rows: int = 1):
    """Plans of the broadcast-diagonal product (thin right operands); None when it does not apply.

    The map writes the diagonals into ``rows`` rows of every super-slot; log2(br / rows)
    doubling rotations copy them to the other rows.
    """
    if not isinstance(lx, Layout) or lx.transposed:
        return None
    _, m, n = lx.matrix
    _, _, p = ly.matrix
    K, bm, br, bc, nrb, ncb = lx.K, lx.bm, lx.br, lx.bc, lx.nrb, lx.ncb
    pp = next_pow2(p)
    if pp > K:
        return None
    rows = min(next_pow2(rows), next_pow2(br))
    # Baby-step giant-step over d = g T + b: rot(X, bm d) (.) E_d = rot(rot(X, bm b) (.) rot(E_d, -bm g T), bm g T),
    # so X is rotated T - 1 times (hoisted) and each giant group once after its relinearization;
    # the map writes E_d already rotated by -bm g T (free). T minimises the weighted key switches.
    T = min((1 << e for e in range(int(math.log2(pp)) + 1)),
            key=lambda T: 0.6 * ncb * (T - 1) + 2 * (-(-pp // T)) - 1)
    # E'(a, d)[i + bm (t + g T)] = Y[a bc + (t + d) mod K, t mod pp] for i < rows
    t = np.arange(K)
    entries = EntryList()
    for a in range(ncb):
        for d in range(pp):
            u = (t + d) % K
            k = a * bc + u
            j = t % pp
            ok = (u < bc) & (k < n) & (j < p)
            if not np.any(ok):
                continue
            cti, sli = ly.index(0, k[ok], j[ok])
            shifted = (t[ok] + (d // T) * T) % K
            for i in range(rows):
                entries.add(a * pp + d, i + bm * shifted, cti, sli)
    emap = entries.arrays()
    bx, by = lx.batch, ly.batch
    rounds = []
    for d in range(pp):
        terms = []
        for b in range(B):
            for rb in range(nrb):
                for a in range(ncb):
                    terms.append((b * nrb + rb, ((b if bx > 1 else 0) * nrb + rb) * ncb + a,
                                  ((b if by > 1 else 0) * ncb + a) * pp + d))
        g, bb = divmod(d, T)
        rounds.append((bm * bb, 0, np.asarray(terms, dtype=np.int64).reshape(-1), bm * g * T))
    loop = B * nrb * (0.6 * ncb * (T - 1) + 2 * (-(-pp // T)) - 1)
    replicate = [-rows * (1 << e) for e in range(int(math.log2(next_pow2(br) // rows)))]
    fold = [bm * pp * (1 << e) for e in range(int(math.log2(K // pp)))]
    out = Layout((B, m, p), slots, bm=bm, br=br, bc=p, clean=False)
    return dict(emap=emap, e_cts=ncb * pp, rounds=rounds, replicate=replicate, fold=fold, out=out, pp=pp, rows=rows,
                giant=T, loop=loop)


# A plaintext product with its diagonal encoded on the fly (the first use of a map) costs about
# a twentieth of a key switch; counting it keeps maps with thousands of diagonals from looking free.
PLAIN_WEIGHT = 0.05


def _predict_keyswitches(counts: Dict[str, int]) -> float:
    return 0.6 * counts.get("hoisted", 0) + (counts.get("rotations", 0) - counts.get("hoisted", 0)) \
        + counts.get("relinearizations", 0) + PLAIN_WEIGHT * counts.get("plain_mults", 0)


def _ccmm_plans(ctx, lx, ly, B: int):
    """Both algorithms' plans and predicted costs: {method: (setup, plans, predicted key switches, key)}."""
    slots = ctx.slots
    out = {}
    kx, ky = lkey(lx), lkey(ly)
    _, m, n = lx.matrix
    _, _, p = ly.matrix

    def get(key, build, store):
        """Plans of the chosen route are kept; those of the candidates it beat are not."""
        return cached_plan(ctx, key, build) if store else build()

    def jkls_for(tiles, store=True):
        key = ("jkls", kx, ky, B, tiles)
        setup = get(key + ("setup",), lambda: _jkls_setup(slots, lx, ly, B, tiles), store)
        nrt, nc, nq = setup["counts"]
        sp = get(key + ("sigma",), lambda: entry_plan(slots, lx.num_ciphertexts // lx.batch, nrt * nc,
                                                      *setup["sigma"]), store)
        tp = get(key + ("tau",), lambda: entry_plan(slots, ly.num_ciphertexts // ly.batch, nc * nq,
                                                    *setup["tau"]), store)
        pred = _predict_keyswitches(sp.predicted(lx.batch)) + _predict_keyswitches(tp.predicted(ly.batch))
        pred += setup["loop"][2]
        return (setup, (sp, tp), pred, key)

    choice = cached_plan(ctx, ("jkls-choice", kx, ky, B), lambda: min(
        (jkls_for(t, False) for t in _jkls_tile_list(slots, m, n, p, bms=(getattr(lx, "bm", 0), getattr(ly, "bm", 0)))),
        key=lambda r: r[2])[0]["tiles"])
    out["jkls"] = jkls_for(choice)
    def diag_for(rows, store=True):
        dkey = ("diag", kx, ky, B, rows)
        ds = get(dkey + ("setup",), lambda: _diag_setup(slots, lx, ly, B, rows), store)
        if ds is None:
            return None
        ep = get(dkey + ("emap",), lambda: entry_plan(slots, ly.num_ciphertexts // ly.batch, ds["e_cts"],
                                                      *ds["emap"]), store)
        nrb = lx.nrb
        pred = _predict_keyswitches(ep.predicted(ly.batch)) + ly.batch * ds["e_cts"] * len(ds["replicate"])
        pred += ds["loop"] + B * nrb * len(ds["fold"])
        return (ds, (ep,), pred, dkey)

    rs = cached_plan(ctx, ("repeat", kx, ky, B, "setup"), lambda: repeat_setup(slots, lx, ly, B))
    if rs is not None:
        rkey = ("repeat", kx, ky, B)
        cp = cached_plan(ctx, rkey + ("cmap",), lambda: entry_plan(slots, lx.num_ciphertexts // lx.batch, rs["c_cts"],
                                                                  *rs["cmap"]))
        dp = cached_plan(ctx, rkey + ("dmap",), lambda: entry_plan(slots, ly.num_ciphertexts // ly.batch, rs["d_cts"],
                                                                  *rs["dmap"]))
        pred = _predict_keyswitches(cp.predicted(lx.batch)) + _predict_keyswitches(dp.predicted(ly.batch))
        pred += ly.batch * rs["d_cts"] * len(rs["replicate"]) + 0.6 * B * lx.nrb * (rs["nn"] - 1) + rs["outputs"]
        out["repeat"] = (rs, (cp, dp), pred, rkey)
    if isinstance(lx, Layout) and lx.transposed and isinstance(ly, Layout) and not ly.transposed:
        px = lx.T  # x's stored matrix, rows in lanes
        best = None
        for thin_left in (True, False):
            lt, lw = (px, ly) if thin_left else (ly, px)
            wkey = ("rowsum", kx, ky, B, thin_left)
            ws = cached_plan(ctx, wkey + ("setup",), lambda: rowsum_setup(slots, lt, lw, B, thin_left))
            if ws is None:
                continue
            cp = cached_plan(ctx, wkey + ("cmap",), lambda: entry_plan(slots, lt.num_ciphertexts // lt.batch,
                                                                      ws["c_cts"], *ws["cmap"]))
            pp = cached_plan(ctx, wkey + ("place",), lambda: entry_plan(slots, ws["place_in"], ws["place_out"],
                                                                       *ws["place"]))
            pred = _predict_keyswitches(cp.predicted(lt.batch)) + lt.batch * ws["c_cts"] * len(ws["spread"])
            pred += ws["outputs"] * (1 + len(ws["lanesum"])) + _predict_keyswitches(pp.predicted(B))
            if best is None or pred < best[2]:
                best = (ws, (cp, pp), pred, wkey)
        if best is not None:
            out["rowsum"] = best
    if isinstance(lx, Layout) and not lx.transposed and next_pow2(p) <= lx.K:
        def pick():
            opts = [r for r in (diag_for(rows, False) for rows in (1, 4, 16, 32)) if r is not None]
            return min(opts, key=lambda r: r[2])[0]["rows"] if opts else None
        rows = cached_plan(ctx, ("diag-choice", kx, ky, B), pick)
        if rows is not None:
            out["diag"] = diag_for(rows)
    return out


def _untransposed(lay: Layout) -> Layout:
    """The same matrix stored non-transposed at the same super-slot height (a cheap transpose map)."""
    return Layout(lay.matrix, lay.slots, bm=lay.bm, transposed=False, shape=lay.shape)


def candidates(ctx, lx, ly, B: int, method: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every way to run x @ y: each algorithm on the operands as stored, and (for operands stored
    transposed) after moving them into a non-transposed layout first (one more level). Best first."""
    xs = [None] + ([_untransposed(lx)] if lx.transposed else [])
    ys = [None] + ([_untransposed(ly)] if ly.transposed else [])
    out = []
    for px in xs:
        for py in ys:
            extra = 0.0
            for pre, src in ((px, lx), (py, ly)):
                if pre is not None:
                    extra += _predict_keyswitches(relayout_plan(ctx, src, pre)[1].predicted(src.batch))
            plans = _ccmm_plans(ctx, px or lx, py or ly, B)
            for meth, (setup, mps, pred, key) in plans.items():
                if method is not None and meth != method:
                    continue
                out.append(dict(method=meth, pre_x=px, pre_y=py, setup=setup, maps=mps, pred=pred + extra, key=key,
                                lx=px or lx, ly=py or ly))
    out.sort(key=lambda c: c["pred"])
    return out


def _candidate_steps(ctx, cand, lx, ly) -> set:
    steps = set()
    for pre, src in ((cand["pre_x"], lx), (cand["pre_y"], ly)):
        if pre is not None:
            steps.update(relayout_plan(ctx, src, pre)[1].rotation_steps())
    for p in cand["maps"]:
        steps.update(p.rotation_steps())
    steps.update(loop_steps(ctx, cand))
    steps.update(cand["setup"].get("replicate", []))
    steps.update(cand["setup"].get("fold", []))
    return steps


def matmul_cc(x, y, cost: MatmulCost, method: Optional[str] = None, periodic: bool = False):
    """x @ y, both encrypted. ``periodic``: x's columns are repeated every next_pow2(n)
    super-slots (the output of a ``diag`` product), so the ``repeat`` route skips its map."""
    ctx = x.context
    if y.context is not ctx:
        raise ValueError("cannot multiply: the tensors belong to different contexts; encrypt both with one Context")
    lx = layout_of(x)
    ly = layout_of(y)
    xs, ys = tuple(lx.shape), tuple(ly.shape)
    if len(xs) == 0 or len(ys) == 0:
        raise ValueError("matmul needs tensors with at least one dimension")
    # Vectors: x (n,) is a row, y (n,) a column (numpy semantics).
    if len(ys) == 1 and not is_matrix(y):
        y = relayout(y, Layout((ys[0], 1), ctx.slots, shape=ys), cost=cost)
        ly = y._layout
    x = to_matrix(x, cost)
    y = to_matrix(y, cost)
    lx, ly = x._layout, y._layout
    if len(ys) == 1 and ly.matrix[1] == 1 and ly.matrix[2] == ys[0]:
        ly = ly.T  # a row-stored vector used as a column
        y = make(ctx, y._ct, ly, like=y)
    bx, m, n = lx.matrix
    by, n2, p = ly.matrix
    if n != n2:
        raise ValueError(f"cannot multiply: shapes {xs} and {ys} do not align ({n} != {n2})")
    B = _batch_dims(bx, by)
    if min(int(x.level), int(y.level)) < 2 and method != "diag":
        if min(int(x.level), int(y.level)) < 1:
            raise ValueError("cannot multiply: an operand is at level 0")
    cands = candidates(ctx, lx, ly, B, method)
    if not cands:
        raise ValueError(f"method {method!r} does not apply to {xs} @ {ys}; use 'jkls' or 'diag'")
    level = min(int(x.level), int(y.level))

    fits = [c for c in cands if all(lv >= nd for lv, nd in zip((int(x.level), int(y.level)), levels_needed(c, periodic)))]
    if not fits:
        c = cands[0]
        raise ValueError(f"cannot multiply: the product ({c['method']}) needs levels {levels_needed(c)} on its "
                         f"operands and they are at levels ({int(x.level)}, {int(y.level)}); bootstrap or start "
                         "from a higher level")
    cand = fits[0]
    ylev = int(y.level) if (cand["method"] != "jkls" and int(x.level) < int(y.level)) else level
    yct = _right_side(ctx, cand, y, ylev, cost)
    ct = _left_side_and_loop(ctx, cand, x, yct, B, cost, periodic)
    setup = cand["setup"]
    out_lay: Layout = setup["out"]
    shape = (B, m, p) if (len(xs) == 3 or len(ys) == 3) else (m, p)
    if len(xs) == 1:
        shape = shape[:-2] + (p,)
    if len(ys) == 1:
        shape = shape[:-1]
    out_lay = out_lay.replace(shape=shape)
    return make(ctx, ct, out_lay, like=x, is_complex=x._complex or y._complex)


def levels_needed(cand, periodic: bool = False) -> Tuple[int, int]:
    """Levels each operand needs for the candidate route (x, y)."""
    m = cand["method"]
    if m == "jkls":
        nx, ny = 2, 2
    elif m == "diag":
        nx, ny = 1, 2
    elif m == "repeat":
        nx, ny = (1 if periodic else 2), 2
    else:  # rowsum: the thin operand is spread (1), multiplied (1), placed (1)
        nx, ny = (3, 2) if cand["setup"]["thin_left"] else (2, 3)
    return nx + (cand["pre_x"] is not None), ny + (cand["pre_y"] is not None)


def _right_side(ctx, cand, y, level: int, cost: MatmulCost):
    """The right operand in the form the product's loop reads (tau for jkls, broadcast diagonals for diag)."""
    if cand["pre_y"] is not None:
        y = relayout(y, cand["pre_y"], cost=cost)
        level = min(level, int(y.level))
    setup, key = cand["setup"], cand["key"]
    if cand["method"] == "jkls":
        tp = cand["maps"][1]
        rm.require(ctx, tp.rotation_steps())
        return rm.apply_map(ctx, key + ("tau",), tp, y._ct, level, 1, cost)
    if cand["method"] == "repeat":
        dp = cand["maps"][1]
        D = rm.apply_map(ctx, key + ("dmap",), dp, y._ct, level, 1, cost)
        return rm.rotate_sum(ctx, D, setup["replicate"], cost)
    if cand["method"] == "rowsum":
        if setup["thin_left"]:
            return y._ct  # W is read as it is
        cp = cand["maps"][0]
        C = rm.apply_map(ctx, key + ("cmap",), cp, y._ct, level, 1, cost)
        return rm.rotate_sum(ctx, C, setup["spread"], cost)
    (ep,) = cand["maps"]
    rm.require(ctx, [*ep.rotation_steps(), *setup["replicate"]])
    E = rm.apply_map(ctx, key + ("emap",), ep, y._ct, level, 1, cost)
    return rm.rotate_sum(ctx, E, setup["replicate"], cost)


def _left_side_and_loop(ctx, cand, x, yct, B: int, cost: MatmulCost, periodic: bool = False):
    """The left operand's map (jkls) and the loop of products; returns the product's ciphertexts."""
    if cand["pre_x"] is not None:
        x = relayout(x, cand["pre_x"], cost=cost)
    setup, key, method = cand["setup"], cand["key"], cand["method"]
    cost.method = method + ("+transpose" if cand["pre_x"] is not None or cand["pre_y"] is not None else "")
    chain_a, chain_b = chain_sides(ctx, cand)
    steps_loop = loop_steps(ctx, cand)
    if method == "jkls":
        sp = cand["maps"][0]
        rm.require(ctx, [*sp.rotation_steps(), *steps_loop])
        level = min(int(x.level), int(yct.level) + 1)
        A = rm.apply_map(ctx, key + ("sigma",), sp, x._ct, level, 1, cost)
        nrt, nc, nq = setup["counts"]
        return rm.bilinear(ctx, A, yct, rounds_of(setup), B * nrt * nq, chain_a, chain_b, cost)
    if method == "repeat":
        C = x._ct
        if not periodic:
            cp = cand["maps"][0]
            C = rm.apply_map(ctx, key + ("cmap",), cp, x._ct, min(int(x.level), int(yct.level) + 1), 1, cost)
        return rm.bilinear(ctx, C, yct, rounds_of(setup), setup["outputs"], chain_a, chain_b, cost)
    if method == "rowsum":
        if setup["thin_left"]:
            cp = cand["maps"][0]
            C = rm.apply_map(ctx, key + ("cmap",), cp, x._ct, min(int(x.level), int(yct.level) + 1), 1, cost)
            C = rm.rotate_sum(ctx, C, setup["spread"], cost)
            W = yct
        else:
            C, W = yct, x._ct
        P = rm.bilinear(ctx, W, C, rounds_of(setup), setup["outputs"], chain_a, chain_b, cost)
        P = rm.rotate_sum(ctx, P, setup["lanesum"], cost)
        pp = cand["maps"][1]
        return rm.apply_map(ctx, key + ("place",), pp, P, int(P.level), 1, cost)
    rm.require(ctx, [*steps_loop, *setup["fold"]])
    ct = rm.bilinear(ctx, x._ct, yct, rounds_of(setup), B * cand["lx"].nrb, chain_a, chain_b, cost)
    return rm.rotate_sum(ctx, ct, setup["fold"], cost)


class PreparedMatrix:
    """An encrypted right operand moved once into the form its products with
    left operands of one layout read (``prepare(y, left_layout)``).

    Like :class:`PlainMatrix` for plaintext weights: a weight applied to many
    activations (a LoRA adapter over a batch of sequences) pays the
    conversion once (``.cost``); each ``x @ prepared`` then costs only the
    left operand's side and the loop of products.
    """

    def __init__(self, y, left: Layout, method: Optional[str] = None) -> None:
        ctx = y.context
        y = to_matrix(y)
        ly = y._layout
        if len(ly.shape) != 2:
            raise ValueError("prepare takes a 2-D right operand")
        if not isinstance(left, Layout) or left.cols != ly.rows:
            raise ValueError(f"cannot prepare a {ly.shape} operand for a left operand in {left}")
        cands = candidates(ctx, left, ly, left.batch, method)
        if not cands:
            raise ValueError(f"method {method!r} does not apply")
        self.context = ctx
        self.left_key = left.key()
        self.cand = cands[0]
        self.shape = tuple(ly.shape)
        self._complex = y._complex
        self.cost = MatmulCost(op="prepare", method=self.cand["method"])
        t0 = time.perf_counter()
        level = int(y.level)
        self.ct = _prepare_right(y, self.cand, self.cost)
        self.cost.levels = level - int(self.ct.level)
        self.cost.seconds = time.perf_counter() - t0
        publish(self.cost)

    def _ghost(self) -> "PreparedMatrix":
        """A copy holding a ghost of the ciphertexts (for planning)."""
        g = object.__new__(PreparedMatrix)
        g.__dict__.update(self.__dict__)
        g.ct = rm.GhostCiphertext(self.ct.level, self.ct.batch)
        return g

    @property
    def level(self) -> int:
        return int(self.ct.level)

    def __repr__(self) -> str:
        return (f"PreparedMatrix({self.shape[0]}x{self.shape[1]}, {self.cand['method']}, level {self.level}, "
                f"{self.ct.batch} ciphertext(s))")


@rm.planned("prepare a right operand")
def _prepare_right(y, cand, cost: MatmulCost):
    return _right_side(y.context, cand, y, int(y.level), cost)


@rm.planned("prepare a right operand")
def prepare(y, left, method: Optional[str] = None) -> PreparedMatrix:
    """``y`` (encrypted) prepared for ``x @ y`` with x in ``left`` (a Layout or a CipherTensor)."""
    lay = left if isinstance(left, Layout) else to_matrix(left)._layout
    return PreparedMatrix(y, lay, method)


def matmul_prepared(x, y: PreparedMatrix, cost: MatmulCost, periodic: bool = False):
    ctx = x.context
    if y.context is not ctx:
        raise ValueError("cannot multiply: the prepared operand belongs to another context")
    x = to_matrix(x, cost)
    if x._layout.key() != y.left_key:
        raise ValueError(f"cannot multiply: the operand was prepared for another left layout than {x._layout}; "
                         "prepare it for this one (hetensor.linalg.prepare)")
    if min(int(x.level), y.level + 1) < levels_needed(y.cand, periodic)[0]:
        raise ValueError(f"cannot multiply: the product ({y.cand['method']}) needs {levels_needed(y.cand, periodic)[0]} "
                         f"level(s) on the left operand, which is at level {int(x.level)}")
    lx = x._layout
    ct = _left_side_and_loop(ctx, y.cand, x, y.ct, lx.batch, cost, periodic)
    b, m, _ = lx.matrix
    p = y.shape[1]
    shape = lx.shape[:-1] + (p,) if len(lx.shape) >= 2 else (p,)
    out_lay = y.cand["setup"]["out"].replace(shape=shape)
    return make(ctx, ct, out_lay, like=x, is_complex=x._complex or y._complex)


def suggest_layout(ctx, left: Layout, shape: Sequence[int], method: Optional[str] = None) -> Layout:
    """The layout to encrypt a right operand of ``shape`` in, for ``x @ y`` with x in ``left``.

    Tries every super-slot height, stored as is and transposed, and returns
    the one with the fewest predicted key switches for the product (LoRA
    adapters and other encrypted weights are encrypted once and used many
    times, so their layout is worth choosing). ``method`` restricts the routes
    considered (``"diag"`` for LoRA's A, ``"repeat"`` for its B).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2:
        raise ValueError("suggest_layout takes the right operand's 2-D shape")
    n, p = shape
    B = left.batch

    def score():
        best = None
        bms = {left.bm // 2, left.bm, 2 * left.bm, next_pow2(n), next_pow2(p), next_pow2(left.rows + p - 1),
               next_pow2(left.rows + n - 1)}
        for bm in sorted(b for b in bms if 1 <= b <= ctx.slots):
            for lay in (Layout((n, p), ctx.slots, bm=bm), Layout((p, n), ctx.slots, bm=bm).T):
                if lay.num_ciphertexts > 64:
                    continue
                cands = candidates(ctx, left, lay, B, method)
                if cands and (best is None or cands[0]["pred"] < best[0]):
                    best = (cands[0]["pred"], lay)
        return best[1]

    return cached_plan(ctx, ("suggest", lkey(left), shape, method), score)


