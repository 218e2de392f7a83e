// The key-switching inner product for one coefficient index k of one limb:
//   out0[k] = sum_j d_j[k] kb_j[k],  out1[k] = sum_j d_j[k] ka_j[k]  (mod q),
// accumulated in 128 bits and reduced once. Valid for terms <= 32 with
// residues below 2^61 (the sum stays below 2^127, the Barrett bound).
#pragma once
#include "core/modarith.hpp"

namespace ht::kernels {

HT_HD void key_switch_dot(u64* out0, u64* out1, const u64* const* d, const u64* const* kb, const u64* const* ka,
                          int terms, const Modulus& m, u64 k) {
  Acc128 s0, s1;
  for (int j = 0; j < terms; ++j) {
    s0.mul_add(d[j][k], kb[j][k]);
    s1.mul_add(d[j][k], ka[j][k]);
  }
  out0[k] = reduce_acc(s0, m);
  out1[k] = reduce_acc(s1, m);
}

// The same for limb i of a limb list, the digits read through a Galois
// permutation (perm may be null): d, kb, ka hold `terms` pointers per limb.
HT_HD void key_switch_inner(u64* const* out0, u64* const* out1, const u64* const* d, const u64* const* kb,
                            const u64* const* ka, int terms, const u32* perm, const Modulus& m, u64 i, u64 k) {
  const u64 src = perm != nullptr ? perm[k] : k;
  Acc128 s0, s1;
  for (int j = 0; j < terms; ++j) {
    const u64 t = i * static_cast<u64>(terms) + static_cast<u64>(j);
    const u64 x = d[t][src];
    s0.mul_add(x, kb[t][k]);
    s1.mul_add(x, ka[t][k]);
  }
  out0[i][k] = reduce_acc(s0, m);
  out1[i][k] = reduce_acc(s1, m);
}

}  // namespace ht::kernels
