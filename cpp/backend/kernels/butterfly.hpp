// Harvey's lazy NTT butterflies (Harvey 2014, "Faster arithmetic for
// number-theoretic transforms"). Values stay in [0, 4q) between butterflies;
// requires q < 2^62. Shared by the CPU loops and the CUDA kernels.
#pragma once
#include "core/modarith.hpp"

namespace ht {

// Cooley-Tukey: (x, y) -> (x + w*y, x - w*y), inputs and outputs in [0, 4q).
HT_HD void ct_butterfly(u64& x, u64& y, const ShoupConst& w, u64 q, u64 two_q) {
  u64 u = x;
  if (u >= two_q) u -= two_q;
  const u64 v = mul_shoup_lazy(y, w, q);  // [0, 2q)
  x = u + v;
  y = u - v + two_q;
}

// Gentleman-Sande: (x, y) -> (x + y, (x - y) * w), inputs and outputs in [0, 2q).
HT_HD void gs_butterfly(u64& x, u64& y, const ShoupConst& w, u64 q, u64 two_q) {
  const u64 u = x, v = y;
  u64 s = u + v;
  if (s >= two_q) s -= two_q;
  x = s;
  y = mul_shoup_lazy(u - v + two_q, w, q);
}

// The last inverse stage with N^-1 folded in: (x, y) -> ((x + y) / N,
// (x - y) * w / N), both fully reduced to [0, q); w_ninv = w * N^-1.
HT_HD void gs_butterfly_last(u64& x, u64& y, const ShoupConst& ninv, const ShoupConst& w_ninv, u64 q, u64 two_q) {
  const u64 u = x, v = y;
  x = mul_shoup(u + v, ninv, q);
  y = mul_shoup(u - v + two_q, w_ninv, q);
}

// Final correction of a lazily reduced value in [0, 4q) to [0, q).
HT_HD u64 reduce_from_4q(u64 x, u64 q) {
  if (x >= 2 * q) x -= 2 * q;
  if (x >= q) x -= q;
  return x;
}

}  // namespace ht
