// RNS kernel bodies for one coefficient index k:
//  - fast basis conversion:
//      y_i = [x_i * (B/b_i)^-1]_{b_i},   out_j = sum_i y_i * [B/b_i]_{c_j}  mod c_j
//  - division by the dropped prime (rescale / ModDown tail).
#pragma once
#include "core/rns_view.hpp"

namespace ht::kernels {

// Converts W consecutive coefficients k0 .. k0+W-1 (W = 1 on the GPU; the
// CPU takes W = 4 so each constant is loaded once for four coefficients).
// `y` is scratch of nsrc * W words.
//  - Exact = false: the fast conversion (Halevi-Polyakov-Shoup 2019), whose
//    result may exceed x by a small multiple of B; key switching absorbs it.
//  - Exact = true: the overflow count v = round(sum_i y_i / b_i) is estimated
//    in floating point and removed, giving the centered representative of x
//    in (-B/2, B/2]. ModDown uses it so the division by P rounds.
// Src(i) and Dst(j) give the i-th source and j-th destination limb (any
// layout: pointer lists below, strided limbs in kernels/switch.hpp).
template <int W, bool Exact, class Src, class Dst>
HT_HD void basis_convert_at(const BasisConvView& v, const Src& src, const Dst& dst, u64* y, u64 k0) {
  u64 over[W];
  double frac[W];
  for (int w = 0; w < W; ++w) frac[w] = 0;
  for (int i = 0; i < v.nsrc; ++i) {
    for (int w = 0; w < W; ++w) {
      const u64 yi = mul_shoup(src(i)[k0 + w], v.qhat_inv[i], v.src_q[i]);
      y[i * W + w] = yi;
      if (Exact) frac[w] += static_cast<double>(yi) * v.src_inv[i];
    }
  }
  for (int w = 0; w < W; ++w) over[w] = Exact ? static_cast<u64>(frac[w] + 0.5) : 0;
  for (int j = 0; j < v.ndst; ++j) {
    Acc128 acc[W];
    const u64* row = v.qhat_mod + static_cast<long>(j) * v.nsrc;
    for (int i = 0; i < v.nsrc; ++i) {
      const u64 c = row[i];
      for (int w = 0; w < W; ++w) acc[w].mul_add(y[i * W + w], c);
    }
    const Modulus& m = v.dst_mod[j];
    for (int w = 0; w < W; ++w) {
      if (Exact) acc[w].mul_add(over[w], v.neg_prod_mod[j]);  // subtracts v * B
      dst(j)[k0 + w] = barrett_reduce_128(acc[w].hi, acc[w].lo, m);
    }
  }
}

struct SrcList {
  const u64* const* p;
  HT_HD const u64* operator()(int i) const { return p[i]; }
};
struct DstList {
  u64* const* p;
  HT_HD u64* operator()(int j) const { return p[j]; }
};

template <int W, bool Exact>
HT_HD void basis_convert_block(const BasisConvView& v, const u64* const* src, u64* const* dst, u64* y, u64 k0) {
  basis_convert_at<W, Exact>(v, SrcList{src}, DstList{dst}, y, k0);
}

// Centered lift of x in [0, p) to the prime q: x if x <= p/2, else x - p.
// When p < 2q one conditional subtraction replaces the reduction.
HT_HD u64 centered_mod(u64 x, u64 p, const Modulus& q) {
  const bool small = p < 2 * q.value;
  if (x <= (p >> 1)) return small ? (x >= q.value ? x - q.value : x) : reduce_u64(x, q);
  u64 d = p - x;
  d = small ? (d >= q.value ? d - q.value : d) : reduce_u64(d, q);
  return d == 0 ? 0 : q.value - d;
}

// (a - b) * inv mod q: the last step of rescale and ModDown.
HT_HD void sub_mul_const(u64* out, const u64* a, const u64* b, const ShoupConst& inv, u64 q, u64 k) {
  out[k] = mul_shoup(sub_mod(a[k], b[k], q), inv, q);
}

// out += (a - b) * inv mod q: the ModDown tail that accumulates into c0.
HT_HD void sub_mul_const_add(u64* out, const u64* a, const u64* b, const ShoupConst& inv, u64 q, u64 k) {
  out[k] = add_mod(out[k], mul_shoup(sub_mod(a[k], b[k], q), inv, q), q);
}

}  // namespace ht::kernels
