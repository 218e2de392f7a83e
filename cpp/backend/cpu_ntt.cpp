// Stages are taken two at a time (radix-4 in registers: four values, four
// butterflies, one load and one store each), which halves the passes over the
// limb; a last odd stage runs radix-2. The butterflies are the shared ones, so
// the result is bit-identical to a stage-by-stage run (and to the GPU).
#include "backend/cpu_ntt.hpp"

#include "backend/cpu_ntt_avx2.hpp"
#include "backend/kernels/butterfly.hpp"
#include "core/numth.hpp"

namespace ht::cpu {

void ntt_forward(u64* a, const NttTables& tb) {
  if (avx2_ntt_usable(tb)) return ntt_forward_avx2(a, tb);
  const u64 n = tb.n, q = tb.mod.value, two_q = 2 * q;
  const ShoupConst* w = tb.psi_rev.data();
  u64 m = 1, t = n >> 1;
  // Two stages at once: (m, t) then (2m, t/2).
  for (; t >= 2; m <<= 2, t >>= 2) {
    const u64 h = t >> 1;
    for (u64 i = 0; i < m; ++i) {
      const ShoupConst w1 = w[m + i], w2a = w[2 * m + 2 * i], w2b = w[2 * m + 2 * i + 1];
      u64* x0 = a + 2 * i * t;
      u64* x1 = x0 + h;
      u64* x2 = x0 + t;
      u64* x3 = x2 + h;
      if (t == 2) {  // the last two stages: finish the reduction on the way out
        u64 v0 = x0[0], v1 = x1[0], v2 = x2[0], v3 = x3[0];
        ct_butterfly(v0, v2, w1, q, two_q);
        ct_butterfly(v1, v3, w1, q, two_q);
        ct_butterfly(v0, v1, w2a, q, two_q);
        ct_butterfly(v2, v3, w2b, q, two_q);
        x0[0] = reduce_from_4q(v0, q); x1[0] = reduce_from_4q(v1, q);
        x2[0] = reduce_from_4q(v2, q); x3[0] = reduce_from_4q(v3, q);
        continue;
      }
      for (u64 j = 0; j < h; ++j) {
        u64 v0 = x0[j], v1 = x1[j], v2 = x2[j], v3 = x3[j];
        ct_butterfly(v0, v2, w1, q, two_q);
        ct_butterfly(v1, v3, w1, q, two_q);
        ct_butterfly(v0, v1, w2a, q, two_q);
        ct_butterfly(v2, v3, w2b, q, two_q);
        x0[j] = v0; x1[j] = v1; x2[j] = v2; x3[j] = v3;
      }
    }
  }
  if (t == 1) {  // one stage left (odd log n)
    for (u64 i = 0; i < m; ++i) {
      ct_butterfly(a[2 * i], a[2 * i + 1], w[m + i], q, two_q);
      a[2 * i] = reduce_from_4q(a[2 * i], q);
      a[2 * i + 1] = reduce_from_4q(a[2 * i + 1], q);
    }
  }
}

void ntt_inverse(u64* a, const NttTables& tb) {
  if (avx2_ntt_usable(tb)) return ntt_inverse_avx2(a, tb);
  const u64 n = tb.n, q = tb.mod.value, two_q = 2 * q;
  const ShoupConst* w = tb.ipsi_rev.data();
  u64 h = n >> 1, t = 1;
  // The last stage also applies N^-1: x * N^-1 and y * (w * N^-1), fully reduced.
  const ShoupConst ninv = tb.n_inv, w_ninv = make_shoup(mul_shoup(w[1].operand, ninv, q), q);
  // Two stages at once: (h, t) then (h/2, 2t).
  for (; h >= 2; h >>= 2, t <<= 2) {
    const bool last = (h == 2);
    for (u64 i = 0; i < (h >> 1); ++i) {
      const ShoupConst w1a = w[h + 2 * i], w1b = w[h + 2 * i + 1], w2 = w[(h >> 1) + i];
      u64* x0 = a + 4 * i * t;
      u64* x1 = x0 + t;
      u64* x2 = x0 + 2 * t;
      u64* x3 = x2 + t;
      for (u64 j = 0; j < t; ++j) {
        u64 v0 = x0[j], v1 = x1[j], v2 = x2[j], v3 = x3[j];
        gs_butterfly(v0, v1, w1a, q, two_q);
        gs_butterfly(v2, v3, w1b, q, two_q);
        if (last) {
          gs_butterfly_last(v0, v2, ninv, w_ninv, q, two_q);
          gs_butterfly_last(v1, v3, ninv, w_ninv, q, two_q);
        } else {
          gs_butterfly(v0, v2, w2, q, two_q);
          gs_butterfly(v1, v3, w2, q, two_q);
        }
        x0[j] = v0; x1[j] = v1; x2[j] = v2; x3[j] = v3;
      }
    }
  }
  if (h == 1) {  // one stage left (odd log n)
    for (u64 j = 0; j < t; ++j) gs_butterfly_last(a[j], a[j + t], ninv, w_ninv, q, two_q);
  }
}

}  // namespace ht::cpu
