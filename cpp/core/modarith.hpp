// Modular arithmetic for primes 2^32 <= q < 2^61 on host and device.
// Barrett reduction (HAC 14.42, base 2) for products of reduced operands;
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

// A prime modulus with its Barrett constant mu = floor(2^(2*bits) / value).
struct Modulus {
  u64 value = 0;
  u64 mu = 0;
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

// Reduce the 128-bit value (hi, lo) < 2^(2*bits) modulo q.
HT_HD u64 barrett_reduce_128(u64 hi, u64 lo, const Modulus& m) {
  const int k = m.bits;
  // q1 = x >> (k - 1), which is < 2^(k+1)
  const u64 q1 = (hi << (65 - k)) | (lo >> (k - 1));
  // q3 = (q1 * mu) >> (k + 1)
  const u64 plo = q1 * m.mu;
  const u64 phi = mulhi64(q1, m.mu);
  const u64 q3 = (phi << (63 - k)) | (plo >> (k + 1));
  u64 r = lo - q3 * m.value;  // exact modulo 2^64, r < 3q
  if (r >= m.value) r -= m.value;
  if (r >= m.value) r -= m.value;
  return r;
}

// a mod q for any 64-bit a (needs bits >= 32 so that a < 2^(2*bits)).
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
    const u64 plo = a * b;
    const u64 phi = mulhi64(a, b);
    lo += plo;
    hi += phi + (lo < plo ? 1 : 0);
  }
};

// Any 128-bit value modulo q: hi mod q, times 2^64 mod q, plus lo mod q.
HT_HD u64 reduce_acc(const Acc128& x, u64 two64_mod_q, const Modulus& m) {
  const u64 h = reduce_u64(x.hi, m);
  const u64 l = reduce_u64(x.lo, m);
  return add_mod(mul_mod(h, two64_mod_q, m), l, m.value);
}

}  // namespace ht
