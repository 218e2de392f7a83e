#include "backend/cpu_dot.hpp"

#include "backend/cpu_simd.hpp"
#include "backend/kernels/keyswitch.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HT_HAVE_X86 1
#endif

namespace ht::cpu {

namespace {

void dot_two_portable(u64* out0, u64* out1, const u64* const* d, const u64* const* kb, const u64* const* ka,
                      int terms, u64 n, const Modulus& m) {
  for (u64 k = 0; k < n; ++k) kernels::key_switch_dot(out0, out1, d, kb, ka, terms, m, k);
}

// The same sums with the term count known at compile time, two coefficients
// per step: the 3 T pointers stay in registers and are read once per pair
// (60-bit primes, 31 limbs x 5 digits at N = 2^16: 39 -> 24 ms).
template <int T>
void dot_two_fixed(u64* out0, u64* out1, const u64* const* d, const u64* const* kb, const u64* const* ka, u64 n,
                   const Modulus& m) {
  const u64* dp[T];
  const u64* bp[T];
  const u64* ap[T];
  for (int j = 0; j < T; ++j) dp[j] = d[j], bp[j] = kb[j], ap[j] = ka[j];
  for (u64 k = 0; k < n; k += 2) {
    Acc128 s0, s1, t0, t1;
#pragma GCC unroll 8
    for (int j = 0; j < T; ++j) {
      const u64 x = dp[j][k], y = dp[j][k + 1];
      s0.mul_add(x, bp[j][k]);
      s1.mul_add(x, ap[j][k]);
      t0.mul_add(y, bp[j][k + 1]);
      t1.mul_add(y, ap[j][k + 1]);
    }
    out0[k] = reduce_acc(s0, m);
    out1[k] = reduce_acc(s1, m);
    out0[k + 1] = reduce_acc(t0, m);
    out1[k + 1] = reduce_acc(t1, m);
  }
}

bool dot_two_fixed_any(u64* out0, u64* out1, const u64* const* d, const u64* const* kb, const u64* const* ka,
                       int terms, u64 n, const Modulus& m) {
  if (n % 2 != 0) return false;
  switch (terms) {
    case 1: dot_two_fixed<1>(out0, out1, d, kb, ka, n, m); return true;
    case 2: dot_two_fixed<2>(out0, out1, d, kb, ka, n, m); return true;
    case 3: dot_two_fixed<3>(out0, out1, d, kb, ka, n, m); return true;
    case 4: dot_two_fixed<4>(out0, out1, d, kb, ka, n, m); return true;
    case 5: dot_two_fixed<5>(out0, out1, d, kb, ka, n, m); return true;
    case 6: dot_two_fixed<6>(out0, out1, d, kb, ka, n, m); return true;
    case 7: dot_two_fixed<7>(out0, out1, d, kb, ka, n, m); return true;
    case 8: dot_two_fixed<8>(out0, out1, d, kb, ka, n, m); return true;
    default: return false;
  }
}

#ifdef HT_HAVE_X86
__attribute__((target("avx2,fma"))) inline __m256d load_u64_as_double(const u64* p) {
  const __m256i magic_bits = _mm256_set1_epi64x(0x4330000000000000LL);
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, magic_bits)), _mm256_set1_pd(4503599627370496.0));
}
__attribute__((target("avx2,fma"))) inline void store_double_as_u64(u64* p, __m256d v) {
  const __m256i magic_bits = _mm256_set1_epi64x(0x4330000000000000LL);
  const __m256d x = _mm256_add_pd(v, _mm256_set1_pd(4503599627370496.0));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_xor_si256(_mm256_castpd_si256(x), magic_bits));
}
// y * w mod q, both in [0, q), q < 2^50: exact remainder in [0, q).
__attribute__((target("avx2,fma"))) inline __m256d mulmod_var(__m256d y, __m256d w, __m256d q, __m256d qinv) {
  const __m256d p_hi = _mm256_mul_pd(y, w);
  const __m256d p_lo = _mm256_fmsub_pd(y, w, p_hi);
  const __m256d qt = _mm256_floor_pd(_mm256_mul_pd(p_hi, qinv));
  const __m256d t_hi = _mm256_mul_pd(qt, q);
  const __m256d t_lo = _mm256_fmsub_pd(qt, q, t_hi);
  __m256d r = _mm256_add_pd(_mm256_sub_pd(p_hi, t_hi), _mm256_sub_pd(p_lo, t_lo));
  r = _mm256_add_pd(r, _mm256_and_pd(_mm256_cmp_pd(r, _mm256_setzero_pd(), _CMP_LT_OQ), q));
  return _mm256_sub_pd(r, _mm256_and_pd(_mm256_cmp_pd(r, q, _CMP_GE_OQ), q));
}
__attribute__((target("avx2,fma"))) inline __m256d addmod(__m256d a, __m256d b, __m256d q) {
  const __m256d s = _mm256_add_pd(a, b);
  return _mm256_sub_pd(s, _mm256_and_pd(_mm256_cmp_pd(s, q, _CMP_GE_OQ), q));
}

__attribute__((target("avx2,fma"))) void dot_two_fma(u64* out0, u64* out1, const u64* const* d, const u64* const* kb,
                                                     const u64* const* ka, int terms, u64 n, const Modulus& m) {
  const __m256d q = _mm256_set1_pd(static_cast<double>(m.value));
  const __m256d qinv = _mm256_set1_pd(1.0 / static_cast<double>(m.value));
  for (u64 k = 0; k < n; k += 4) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (int j = 0; j < terms; ++j) {
      const __m256d x = load_u64_as_double(d[j] + k);
      s0 = addmod(s0, mulmod_var(x, load_u64_as_double(kb[j] + k), q, qinv), q);
      s1 = addmod(s1, mulmod_var(x, load_u64_as_double(ka[j] + k), q, qinv), q);
    }
    store_double_as_u64(out0 + k, s0);
    store_double_as_u64(out1 + k, s1);
  }
}
#endif

}  // namespace

void dot_two(u64* out0, u64* out1, const u64* const* d, const u64* const* kb, const u64* const* ka, int terms, u64 n,
             const Modulus& m) {
#ifdef HT_HAVE_X86
  if (m.value < (u64(1) << 50) && n % 4 == 0 && simd_enabled()) return dot_two_fma(out0, out1, d, kb, ka, terms, n, m);
#endif
  if (dot_two_fixed_any(out0, out1, d, kb, ka, terms, n, m)) return;
  dot_two_portable(out0, out1, d, kb, ka, terms, n, m);
}

}  // namespace ht::cpu
