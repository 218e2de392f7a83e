// CPU launcher for the key-switching inner product: for one limb,
//   out0[k] = sum_j d_j[k] * kb_j[k],  out1[k] = sum_j d_j[k] * ka_j[k]  (mod q).
// The portable path accumulates in 128 bits and reduces once (Barrett); for
// q < 2^50 on AVX2+FMA machines the products are exact double-double
// products reduced per term (exact below 2^53). Both give canonical
// residues, so they agree bit for bit.
#pragma once
#include "core/modarith.hpp"

namespace ht::cpu {

void dot_two(u64* out0, u64* out1, const u64* const* d, const u64* const* kb, const u64* const* ka, int terms,
             u64 n, const Modulus& m);

}  // namespace ht::cpu
