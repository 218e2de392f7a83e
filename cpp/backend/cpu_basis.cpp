#include "backend/cpu_basis.hpp"

#include <vector>

#include "backend/kernels/basis.hpp"

namespace ht::cpu {

namespace {

constexpr int kBlock = 16;

// One block of kBlock coefficients from k0. y: scratch of nsrc * kBlock words.
// The overflow estimate sums y_i / b_i in the same order as the shared body,
// so it rounds to the same integer.
template <bool Exact>
void convert_block(const kernels::BasisConvView& v, const u64* const* src, u64* const* dst, u64* y, u64 k0) {
  const int ns = v.nsrc;
  u64 over[kBlock];
  for (int g = 0; g < kBlock; g += 4) {
    double f0 = 0, f1 = 0, f2 = 0, f3 = 0;
    for (int i = 0; i < ns; ++i) {
      const u64* s = src[i] + k0 + g;
      const ShoupConst w = v.qhat_inv[i];
      const u64 q = v.src_q[i];
      const u64 y0 = mul_shoup(s[0], w, q), y1 = mul_shoup(s[1], w, q);
      const u64 y2 = mul_shoup(s[2], w, q), y3 = mul_shoup(s[3], w, q);
      u64* yy = y + i * kBlock + g;
      yy[0] = y0, yy[1] = y1, yy[2] = y2, yy[3] = y3;
      if (Exact) {
        const double inv = v.src_inv[i];
        f0 += static_cast<double>(y0) * inv, f1 += static_cast<double>(y1) * inv;
        f2 += static_cast<double>(y2) * inv, f3 += static_cast<double>(y3) * inv;
      }
    }
    if (Exact) {
      over[g] = static_cast<u64>(f0 + 0.5), over[g + 1] = static_cast<u64>(f1 + 0.5);
      over[g + 2] = static_cast<u64>(f2 + 0.5), over[g + 3] = static_cast<u64>(f3 + 0.5);
    }
  }
  for (int j = 0; j < v.ndst; ++j) {
    const u64* row = v.qhat_mod + static_cast<long>(j) * ns;
    const Modulus& m = v.dst_mod[j];
    u64* d = dst[j] + k0;
    for (int g = 0; g < kBlock; g += 4) {
      u128 a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (int i = 0; i < ns; ++i) {
        const u64 c = row[i];
        const u64* yy = y + i * kBlock + g;
        a0 += static_cast<u128>(yy[0]) * c, a1 += static_cast<u128>(yy[1]) * c;
        a2 += static_cast<u128>(yy[2]) * c, a3 += static_cast<u128>(yy[3]) * c;
      }
      if (Exact) {  // subtracts v * B
        const u64 c = v.neg_prod_mod[j];
        a0 += static_cast<u128>(over[g]) * c, a1 += static_cast<u128>(over[g + 1]) * c;
        a2 += static_cast<u128>(over[g + 2]) * c, a3 += static_cast<u128>(over[g + 3]) * c;
      }
      d[g] = barrett_reduce_128(static_cast<u64>(a0 >> 64), static_cast<u64>(a0), m);
      d[g + 1] = barrett_reduce_128(static_cast<u64>(a1 >> 64), static_cast<u64>(a1), m);
      d[g + 2] = barrett_reduce_128(static_cast<u64>(a2 >> 64), static_cast<u64>(a2), m);
      d[g + 3] = barrett_reduce_128(static_cast<u64>(a3 >> 64), static_cast<u64>(a3), m);
    }
  }
}

}  // namespace

void basis_convert(const kernels::BasisConvView& v, const u64* const* src, u64* const* dst, u64 begin, u64 end,
                   bool exact) {
  thread_local std::vector<u64> y;
  if (y.size() < static_cast<size_t>(v.nsrc) * kBlock) y.resize(static_cast<size_t>(v.nsrc) * kBlock);
  u64 k = begin;
  for (; k + kBlock <= end; k += kBlock) {
    if (exact) convert_block<true>(v, src, dst, y.data(), k);
    else convert_block<false>(v, src, dst, y.data(), k);
  }
  for (; k < end; k += 4) {  // the tail: the shared body, four at a time
    if (exact) kernels::basis_convert_block<4, true>(v, src, dst, y.data(), k);
    else kernels::basis_convert_block<4, false>(v, src, dst, y.data(), k);
  }
}

}  // namespace ht::cpu
