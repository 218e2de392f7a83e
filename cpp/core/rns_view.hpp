// The constants of one RNS basis conversion as plain pointers, the form the
// CPU and GPU kernel bodies take (backend/kernels/basis.hpp). Built by
// core/rns (host tables) or by the CUDA launcher (device copies).
#pragma once
#include "core/modarith.hpp"

namespace ht::kernels {

// Converts source limbs x[i][k], i < nsrc (stride n), to out[j][k], j < ndst.
struct BasisConvView {
  int nsrc, ndst;
  const u64* src_q;            // [nsrc]
  const ShoupConst* qhat_inv;  // [nsrc]   (B/b_i)^-1 mod b_i
  const u64* qhat_mod;         // [ndst][nsrc]  (B/b_i) mod c_j
  const Modulus* dst_mod;      // [ndst]
  const double* src_inv;       // [nsrc]  1 / b_i, for the exact variant
  const u64* neg_prod_mod;     // [ndst]  -B mod c_j, for the exact variant
};

}  // namespace ht::kernels
