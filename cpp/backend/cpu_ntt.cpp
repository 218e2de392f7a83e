#include "backend/cpu_ntt.hpp"

#include "backend/kernels/butterfly.hpp"

namespace ht::cpu {

void ntt_forward(u64* a, const NttTables& tb) {
  const u64 n = tb.n, q = tb.mod.value, two_q = 2 * q;
  const ShoupConst* w = tb.psi_rev.data();
  u64 t = n;
  for (u64 m = 1; m < n; m <<= 1) {
    t >>= 1;
    for (u64 i = 0; i < m; ++i) {
      const ShoupConst wi = w[m + i];
      u64* x = a + 2 * i * t;
      u64* y = x + t;
      for (u64 j = 0; j < t; ++j) ct_butterfly(x[j], y[j], wi, q, two_q);
    }
  }
  for (u64 k = 0; k < n; ++k) a[k] = reduce_from_4q(a[k], q);
}

void ntt_inverse(u64* a, const NttTables& tb) {
  const u64 n = tb.n, q = tb.mod.value, two_q = 2 * q;
  const ShoupConst* w = tb.ipsi_rev.data();
  u64 t = 1;
  for (u64 h = n >> 1; h >= 1; h >>= 1) {
    for (u64 i = 0; i < h; ++i) {
      const ShoupConst wi = w[h + i];
      u64* x = a + 2 * i * t;
      u64* y = x + t;
      for (u64 j = 0; j < t; ++j) gs_butterfly(x[j], y[j], wi, q, two_q);
    }
    t <<= 1;
  }
  for (u64 k = 0; k < n; ++k) a[k] = mul_shoup(a[k], tb.n_inv, q);
}

}  // namespace ht::cpu
