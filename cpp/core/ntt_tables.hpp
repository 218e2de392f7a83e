// Twiddle tables for the negacyclic NTT modulo one prime: powers of a
// primitive 2N-th root psi in bit-reversed order, with Shoup quotients, so the
// psi twist is merged into the butterflies (no separate pre/post multiply).
// Computed once on the host; the GPU uploads the same arrays unchanged.
#pragma once
#include <vector>

#include "core/modarith.hpp"

namespace ht {

struct NttTables {
  Modulus mod;
  u64 n = 0;
  int log_n = 0;
  u64 psi = 0;                        // the primitive 2N-th root used
  std::vector<ShoupConst> psi_rev;    // psi^bitrev(i)
  std::vector<ShoupConst> ipsi_rev;   // psi^-bitrev(i)
  ShoupConst n_inv;                   // N^-1 mod q
  NttTables() = default;
  NttTables(u64 q, u64 n);
};

}  // namespace ht
