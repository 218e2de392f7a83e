// RNS kernel bodies for one coefficient index k:
//  - fast basis conversion (Halevi-Polyakov-Shoup 2019, "approximate" variant):
//      y_i = [x_i * (B/b_i)^-1]_{b_i},   out_j = sum_i y_i * [B/b_i]_{c_j}  mod c_j
//    The result may be off by a small multiple of B, which key switching absorbs.
//  - division by the dropped prime (rescale / ModDown tail).
#pragma once
#include "core/modarith.hpp"

namespace ht::kernels {

// Source limbs x[i][k] for i < nsrc (stride n), fills out[j][k] for j < ndst.
// `y` is scratch of nsrc words (per thread on CPU, registers/local on GPU).
struct BasisConvView {
  int nsrc, ndst;
  const u64* src_q;            // [nsrc]
  const ShoupConst* qhat_inv;  // [nsrc]   (B/b_i)^-1 mod b_i
  const u64* qhat_mod;         // [ndst][nsrc]  (B/b_i) mod c_j
  const Modulus* dst_mod;      // [ndst]
  const u64* dst_two64;        // [ndst]  2^64 mod c_j
  const double* src_inv;       // [nsrc]  1 / b_i, for the exact variant
  const u64* prod_mod;         // [ndst]  B mod c_j, for the exact variant
};

HT_HD void basis_convert_coeff(const BasisConvView& v, const u64* const* src, u64* const* dst, u64* y, u64 k) {
  for (int i = 0; i < v.nsrc; ++i) y[i] = mul_shoup(src[i][k], v.qhat_inv[i], v.src_q[i]);
  for (int j = 0; j < v.ndst; ++j) {
    Acc128 acc;
    const u64* row = v.qhat_mod + static_cast<long>(j) * v.nsrc;
    for (int i = 0; i < v.nsrc; ++i) acc.mul_add(y[i], row[i]);
    dst[j][k] = reduce_acc(acc, v.dst_two64[j], v.dst_mod[j]);
  }
}

// Exact, centered variant (Halevi-Polyakov-Shoup): the overflow count
// v = round(sum_i y_i / b_i) is estimated in floating point and removed, so
// out_j is the centered representative of x in (-B/2, B/2] modulo c_j.
// ModDown uses it so that the division by P rounds instead of adding up to
// alpha units of error.
HT_HD void basis_convert_coeff_exact(const BasisConvView& v, const u64* const* src, u64* const* dst, u64* y, u64 k) {
  double frac = 0;
  for (int i = 0; i < v.nsrc; ++i) {
    y[i] = mul_shoup(src[i][k], v.qhat_inv[i], v.src_q[i]);
    frac += static_cast<double>(y[i]) * v.src_inv[i];
  }
  const u64 over = static_cast<u64>(frac + 0.5);
  for (int j = 0; j < v.ndst; ++j) {
    Acc128 acc;
    const u64* row = v.qhat_mod + static_cast<long>(j) * v.nsrc;
    for (int i = 0; i < v.nsrc; ++i) acc.mul_add(y[i], row[i]);
    const u64 r = reduce_acc(acc, v.dst_two64[j], v.dst_mod[j]);
    const u64 c = mul_mod(reduce_u64(over, v.dst_mod[j]), v.prod_mod[j], v.dst_mod[j]);
    dst[j][k] = sub_mod(r, c, v.dst_mod[j].value);
  }
}

// Centered lift of x in [0, p) to the prime q: x if x <= p/2, else x - p.
HT_HD u64 centered_mod(u64 x, u64 p, const Modulus& q) {
  if (x <= (p >> 1)) return reduce_u64(x, q);
  const u64 d = reduce_u64(p - x, q);
  return d == 0 ? 0 : q.value - d;
}

// (a - b) * inv mod q: the last step of rescale and ModDown.
HT_HD void sub_mul_const(u64* out, const u64* a, const u64* b, const ShoupConst& inv, u64 q, u64 k) {
  out[k] = mul_shoup(sub_mod(a[k], b[k], q), inv, q);
}

}  // namespace ht::kernels
