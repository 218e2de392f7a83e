// Modular arithmetic for primes 2^20 <= q < 2^61 on host and device.
// Barrett reduction with a 128-bit ratio for products and sums of products;
// Shoup multiplication for constant operands (twiddles, RNS constants).
// The only __CUDA_ARCH__ branch is the 64x64 -> high 64 multiply.
#pragma once
#include "core/defs.hpp"

namespace ht {

HT_HD u64 mulhi64(u64 a, u64 b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return static_cast<u64>((static_cast<u128>(a) * b) >> 64);
#endif
}

// A prime modulus with its Barrett constant ratio = floor(2^128 / value),
// split in two words (ratio_hi, ratio_lo).
struct Modulus {
  u64 value = 0;
  u64 ratio_lo = 0;
  u64 ratio_hi = 0;
  int bits = 0;
};

// A constant operand w with its Shoup quotient floor(w * 2^64 / q).
struct ShoupConst {
  u64 operand = 0;
  u64 quotient = 0;
};

HT_HD u64 add_mod(u64 a, u64 b, u64 q) {
  u64 s = a + b;
  return s >= q ? s - q : s;
}
HT_HD u64 sub_mod(u64 a, u64 b, u64 q) { return a >= b ? a - b : a + q - b; }
HT_HD u64 neg_mod(u64 a, u64 q) { return a == 0 ? 0 : q - a; }

// Reduce any 128-bit value x = (hi, lo) modulo q by Barrett reduction with
// the 128-bit ratio: the quotient estimate floor(x * ratio / 2^128) drops only
// the low partial product, so it is at most one below floor(x / q) and a
// single conditional subtraction finishes for x < 2^127. No variable shifts.
HT_HD u64 barrett_reduce_128(u64 hi, u64 lo, const Modulus& m) {
  const u64 carry = mulhi64(lo, m.ratio_lo);
  // middle words: lo * ratio_hi + hi * ratio_lo + carry
  const u64 a_lo = lo * m.ratio_hi, a_hi = mulhi64(lo, m.ratio_hi);
  const u64 b_lo = hi * m.ratio_lo, b_hi = mulhi64(hi, m.ratio_lo);
  u64 mid = a_lo + carry;
  u64 top = a_hi + (mid < carry ? 1 : 0);
  const u64 mid2 = mid + b_lo;
  top += b_hi + (mid2 < b_lo ? 1 : 0);
  const u64 quotient = hi * m.ratio_hi + top;
  const u64 r = lo - quotient * m.value;
  return r >= m.value ? r - m.value : r;
}

// a mod q for any 64-bit a.
HT_HD u64 reduce_u64(u64 a, const Modulus& m) { return barrett_reduce_128(0, a, m); }

// a * b mod q for a, b < q.
HT_HD u64 mul_mod(u64 a, u64 b, const Modulus& m) {
  return barrett_reduce_128(mulhi64(a, b), a * b, m);
}

// Shoup product a * w mod q, lazy: result in [0, 2q). Valid for any 64-bit a.
HT_HD u64 mul_shoup_lazy(u64 a, const ShoupConst& w, u64 q) {
  const u64 qt = mulhi64(a, w.quotient);
  return a * w.operand - qt * q;
}
HT_HD u64 mul_shoup(u64 a, const ShoupConst& w, u64 q) {
  const u64 r = mul_shoup_lazy(a, w, q);
  return r >= q ? r - q : r;
}

// A 128-bit accumulator for sums of products (basis conversion).
struct Acc128 {
  u64 lo = 0, hi = 0;
  HT_HD void mul_add(u64 a, u64 b) {
#if defined(__CUDA_ARCH__)
    const u64 plo = a * b;
    const u64 phi = mulhi64(a, b);
    lo += plo;
    hi += phi + (lo < plo ? 1 : 0);
#else
    // One 64x64 -> 128 multiply and an add with carry (written as two
    // multiplies, the compiler emitted both imul and mul plus a setb chain).
    const u128 s = ((static_cast<u128>(hi) << 64) | lo) + static_cast<u128>(a) * b;
    lo = static_cast<u64>(s);
    hi = static_cast<u64>(s >> 64);
#endif
  }
};

// The accumulated value modulo q (valid while the sum stays below 2^127).
HT_HD u64 reduce_acc(const Acc128& x, const Modulus& m) { return barrett_reduce_128(x.hi, x.lo, m); }

}  // namespace ht
