// NTT kernel bodies: one butterfly of one stage, indexed the same way on CPU
// and GPU. Forward is Cooley-Tukey with psi_rev (natural in, bit-reversed
// out); inverse is Gentleman-Sande with ipsi_rev (bit-reversed in, natural out)
// and the N^-1 factor applied in a final pass.
#pragma once
#include "backend/kernels/butterfly.hpp"

namespace ht::kernels {

struct NttView {
  u64 q;
  const ShoupConst* psi_rev;
  const ShoupConst* ipsi_rev;
  ShoupConst n_inv;
  u64 n;
};

// Forward stage with m groups of half-size t (m * t = n / 2); `k` in [0, n/2).
HT_HD void ntt_forward_butterfly(u64* a, const NttView& v, u64 m, u64 t, u64 k) {
  const u64 i = k / t, j = k % t;
  const u64 j1 = 2 * i * t + j;
  ct_butterfly(a[j1], a[j1 + t], v.psi_rev[m + i], v.q, 2 * v.q);
}

// Inverse stage with h groups of half-size t (h * t = n / 2); `k` in [0, n/2).
HT_HD void ntt_inverse_butterfly(u64* a, const NttView& v, u64 h, u64 t, u64 k) {
  const u64 i = k / t, j = k % t;
  const u64 j1 = 2 * i * t + j;
  gs_butterfly(a[j1], a[j1 + t], v.ipsi_rev[h + i], v.q, 2 * v.q);
}

// Last pass of the forward transform: [0, 4q) -> [0, q).
HT_HD void ntt_forward_finish(u64* a, const NttView& v, u64 k) { a[k] = reduce_from_4q(a[k], v.q); }

// Last pass of the inverse transform: multiply by N^-1, [0, 2q) -> [0, q).
HT_HD void ntt_inverse_finish(u64* a, const NttView& v, u64 k) { a[k] = mul_shoup(a[k], v.n_inv, v.q); }

}  // namespace ht::kernels
