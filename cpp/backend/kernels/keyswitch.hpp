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

}  // namespace ht::kernels
