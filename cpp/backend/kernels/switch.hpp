// Fused key-switching bodies (backend/switch_fused.hpp runs them): one body
// per pass over all jobs and targets of a Backend::key_switch call, indexed
// the same way on CPU and GPU. The arithmetic is the shared bodies' (basis
// conversion, 128-bit inner product reduced once, Shoup tails), so the fused
// switch equals the sequence of coarse ops word for word; what is new is the
// layout: strided limbs, key limbs found from the key's base pointer (no
// pointer lists), ModUp of every digit and the ModDown tail with its
// permuted c added in one pass each.
// Scratch layout (n words per limb; el = level + 1 + alpha, nq = level + 1,
// nout = level (rescale) or level + 1):
//   coef [jobs][nq]   ext [jobs][digits][el]   acc [targets][2][el]   conv [targets][2][nout]
#pragma once
#include "backend/kernels/basis.hpp"

namespace ht::kernels {

constexpr int kMaxSwitchSources = 64;  // per-thread scratch of the conversions (digit size, alpha + 1)

// backend::SwitchConstants in the memory of the launcher.
struct SwitchConstView {
  u64 n;
  int level, alpha, digits;
  const int* digit_begin;       // [digits]
  const int* digit_end;         // [digits]
  const Modulus* moduli;        // [el]
  const BasisConvView* modup;   // [digits]
  BasisConvView moddown;        // P -> Q_level
  const ShoupConst* p_inv;      // [level + 1]
  const ShoupConst* p_mod;      // [level + 1]
  BasisConvView moddown_rescale;
  const ShoupConst* pq_inv;     // [level]
  HT_HD int ext_limbs() const { return level + 1 + alpha; }
};

// One target (backend::SwitchTarget) with its key as a base pointer.
struct SwitchTargetView {
  const u64* key;   // [digits][2][key_limbs][n]
  int key_level, key_limbs;
  const u32* perm;  // launcher memory or null
  const u64* c0;
  const u64* c1;
  u64* out0;
  u64* out1;
  u64 job;
};

struct SwitchScratch {
  const u64* const* d;              // [jobs]
  const SwitchTargetView* targets;  // [targets]
  u64* coef;
  u64* ext;
  u64* acc;
  u64* conv;
  bool rescale;
  HT_HD int nout(const SwitchConstView& c) const { return rescale ? c.level : c.level + 1; }
};

// coef[job][i][k] = d[job][i][k] (idx over jobs x nq x n).
HT_HD void switch_copy_input(const SwitchConstView& c, const SwitchScratch& s, u64 idx) {
  const u64 limb_words = static_cast<u64>(c.level + 1) * c.n;
  const u64 job = idx / limb_words;
  s.coef[idx] = s.d[job][idx - job * limb_words];
}

struct StridedSrc {
  const u64* base;
  u64 n;
  int first;
  HT_HD const u64* operator()(int i) const { return base + static_cast<u64>(first + i) * n; }
};
struct SkipDst {  // ext limbs 0..el-1 without [skip_begin, skip_end)
  u64* base;
  u64 n;
  int skip_begin, skip_len;
  HT_HD u64* operator()(int j) const {
    return base + static_cast<u64>(j < skip_begin ? j : j + skip_len) * n;
  }
};
struct StridedDst {
  u64* base;
  u64 n;
  HT_HD u64* operator()(int j) const { return base + static_cast<u64>(j) * n; }
};

// ModUp of digit j of `job` at coefficient k: the digit's own limbs copied
// from d (NTT values), the others converted (exact, centered) from coef.
// y: kMaxSwitchSources words.
HT_HD void switch_modup(const SwitchConstView& c, const SwitchScratch& s, u64 job, int j, u64 k, u64* y) {
  const int el = c.ext_limbs(), db = c.digit_begin[j], de = c.digit_end[j];
  const u64 n = c.n;
  u64* ext = s.ext + (job * c.digits + j) * el * n;
  const u64* d = s.d[job];
  for (int e = db; e < de; ++e) ext[static_cast<u64>(e) * n + k] = d[static_cast<u64>(e) * n + k];
  const StridedSrc src{s.coef + job * (c.level + 1) * n, n, db};
  basis_convert_at<1, true>(c.modup[j], src, SkipDst{ext, n, db, de - db}, y, k);
}

// The inner product of target t over ext limb e at coefficient k, through
// its permutation; in a rescaling switch, P * c added on the Q limbs.
HT_HD void switch_inner(const SwitchConstView& c, const SwitchScratch& s, u64 t, int e, u64 k) {
  const SwitchTargetView& tv = s.targets[t];
  const int el = c.ext_limbs();
  const u64 n = c.n;
  const u64 src = tv.perm != nullptr ? tv.perm[k] : k;
  const u64 key_limb = static_cast<u64>(e <= c.level ? e : tv.key_level + 1 + (e - c.level - 1));
  const u64 half = static_cast<u64>(tv.key_limbs) * n;
  const u64* ext = s.ext + tv.job * c.digits * el * n + static_cast<u64>(e) * n;
  Acc128 s0, s1;
  for (int j = 0; j < c.digits; ++j) {
    const u64 x = ext[static_cast<u64>(j) * el * n + src];
    const u64* b = tv.key + 2 * static_cast<u64>(j) * half + key_limb * n;
    s0.mul_add(x, b[k]);
    s1.mul_add(x, b[half + k]);
  }
  const Modulus& m = c.moduli[e];
  u64 r0 = reduce_acc(s0, m), r1 = reduce_acc(s1, m);
  if (s.rescale && e <= c.level) {
    const u64 q = m.value;
    r0 = add_mod(r0, mul_shoup(tv.c0[static_cast<u64>(e) * n + k], c.p_mod[e], q), q);
    r1 = add_mod(r1, mul_shoup(tv.c1[static_cast<u64>(e) * n + k], c.p_mod[e], q), q);
  }
  u64* acc = s.acc + 2 * t * el * n + static_cast<u64>(e) * n;
  acc[k] = r0;
  acc[static_cast<u64>(el) * n + k] = r1;
}

// ModDown's conversion of part (0 or 1) of target t at coefficient k: the P
// limbs (rescale: q_level and P) of acc, already inverse-transformed, to conv.
HT_HD void switch_moddown_convert(const SwitchConstView& c, const SwitchScratch& s, u64 t, int part, u64 k,
                                  u64* y) {
  const int el = c.ext_limbs(), nout = s.nout(c);
  const u64 n = c.n;
  const u64* acc = s.acc + (2 * t + part) * el * n;
  u64* conv = s.conv + (2 * t + part) * nout * n;
  if (s.rescale) basis_convert_at<1, true>(c.moddown_rescale, StridedSrc{acc, n, c.level}, StridedDst{conv, n}, y, k);
  else basis_convert_at<1, true>(c.moddown, StridedSrc{acc, n, c.level + 1}, StridedDst{conv, n}, y, k);
}

// ModDown's tail of part `part` of target t, limb i, coefficient k (conv in
// the NTT domain): out = [phi(c)] + (acc - conv) * P^-1, or (acc - conv) *
// (P q_level)^-1 when rescaling.
HT_HD void switch_moddown_tail(const SwitchConstView& c, const SwitchScratch& s, u64 t, int part, int i, u64 k) {
  const SwitchTargetView& tv = s.targets[t];
  const int el = c.ext_limbs(), nout = s.nout(c);
  const u64 n = c.n, q = c.moduli[i].value, off = static_cast<u64>(i) * n;
  const u64 x = s.acc[(2 * t + part) * el * n + off + k];
  const u64 v = s.conv[(2 * t + part) * nout * n + off + k];
  u64* out = part == 0 ? tv.out0 : tv.out1;
  if (s.rescale) {
    out[off + k] = mul_shoup(sub_mod(x, v, q), c.pq_inv[i], q);
    return;
  }
  const u64 r = mul_shoup(sub_mod(x, v, q), c.p_inv[i], q);
  const u64* in = part == 0 ? tv.c0 : tv.c1;
  if (in == nullptr) {
    out[off + k] = r;
    return;
  }
  const u64 from = tv.perm != nullptr ? tv.perm[k] : k;
  out[off + k] = add_mod(in[off + from], r, q);
}

// A set of limbs for the fused NTTs: limb l is in block l / per_block at
// position first + l % per_block of the block (blocks of `stride` limbs from
// base), transformed with table first + l % per_block. With skip_digits, a
// limb inside digit (block % digits) of the ModUp is left alone.
struct LimbGrid {
  u64* base;
  u64 n;
  u64 per_block, stride;
  int first;
  int digits;              // 0: no skip
  const int* digit_begin;  // launcher memory
  const int* digit_end;
  // The limb's data and table index, or null when it is skipped.
  HT_HD u64* limb(u64 l, int& table) const {
    const u64 block = l / per_block;
    const int r = first + static_cast<int>(l - block * per_block);
    table = r;
    if (digits > 0) {
      const int j = static_cast<int>(block % static_cast<u64>(digits));
      if (r >= digit_begin[j] && r < digit_end[j]) return nullptr;
    }
    return base + (block * stride + static_cast<u64>(r)) * n;
  }
};

}  // namespace ht::kernels
