#include "backend/cpu_ntt_fma.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/kernels/butterfly.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HT_HAVE_X86 1
#endif

namespace ht::cpu {

namespace {
std::atomic<int> g_simd{-1};  // -1: not decided yet

bool cpu_has_avx2_fma() {
#ifdef HT_HAVE_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
}  // namespace

void set_simd_enabled(bool enabled) { g_simd = (enabled && cpu_has_avx2_fma()) ? 1 : 0; }

bool simd_enabled() {
  int s = g_simd.load();
  if (s < 0) {
    const char* env = std::getenv("HETENSOR_SIMD");
    s = (env && std::strcmp(env, "0") == 0) ? 0 : (cpu_has_avx2_fma() ? 1 : 0);
    g_simd = s;
  }
  return s == 1;
}

bool fma_ntt_usable(const NttTables& t) {
  return t.mod.value < (u64(1) << 50) && t.n >= 16 && simd_enabled();
}

#ifdef HT_HAVE_X86

namespace {

// r = y * w mod q for 4 lanes, y in [0, 2q), w in [0, q), q < 2^50; r in [0, q).
__attribute__((target("avx2,fma"))) inline __m256d mulmod4(__m256d y, __m256d w, __m256d wq, __m256d q) {
  const __m256d p_hi = _mm256_mul_pd(y, w);
  const __m256d p_lo = _mm256_fmsub_pd(y, w, p_hi);                  // exact low part of y*w
  const __m256d qt = _mm256_floor_pd(_mm256_mul_pd(y, wq));          // floor(y*w/q) +- 1
  const __m256d t_hi = _mm256_mul_pd(qt, q);
  const __m256d t_lo = _mm256_fmsub_pd(qt, q, t_hi);
  __m256d r = _mm256_add_pd(_mm256_sub_pd(p_hi, t_hi), _mm256_sub_pd(p_lo, t_lo));  // exact, in [-q, 2q)
  r = _mm256_add_pd(r, _mm256_and_pd(_mm256_cmp_pd(r, _mm256_setzero_pd(), _CMP_LT_OQ), q));
  r = _mm256_sub_pd(r, _mm256_and_pd(_mm256_cmp_pd(r, q, _CMP_GE_OQ), q));
  return r;
}

__attribute__((target("avx2,fma"))) inline __m256d addmod4(__m256d a, __m256d b, __m256d q) {
  const __m256d s = _mm256_add_pd(a, b);
  return _mm256_sub_pd(s, _mm256_and_pd(_mm256_cmp_pd(s, q, _CMP_GE_OQ), q));
}

__attribute__((target("avx2,fma"))) inline __m256d submod4(__m256d a, __m256d b, __m256d q) {
  const __m256d d = _mm256_sub_pd(a, b);
  return _mm256_add_pd(d, _mm256_and_pd(_mm256_cmp_pd(d, _mm256_setzero_pd(), _CMP_LT_OQ), q));
}

thread_local std::vector<double> t_scratch;

// Exact u64 <-> double for values below 2^52: add or remove the exponent of 2^52.
__attribute__((target("avx2,fma"))) void to_double(const u64* a, double* d, u64 n) {
  const __m256i magic_bits = _mm256_set1_epi64x(0x4330000000000000LL);
  const __m256d magic = _mm256_set1_pd(4503599627370496.0);
  for (u64 k = 0; k < n; k += 4) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k));
    _mm256_storeu_pd(d + k, _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, magic_bits)), magic));
  }
}
__attribute__((target("avx2,fma"))) void to_u64(const double* d, u64* a, u64 n) {
  const __m256i magic_bits = _mm256_set1_epi64x(0x4330000000000000LL);
  const __m256d magic = _mm256_set1_pd(4503599627370496.0);
  for (u64 k = 0; k < n; k += 4) {
    const __m256d x = _mm256_add_pd(_mm256_loadu_pd(d + k), magic);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a + k), _mm256_xor_si256(_mm256_castpd_si256(x), magic_bits));
  }
}

}  // namespace

__attribute__((target("avx2,fma"))) void ntt_forward_fma(u64* a, const NttTables& tb) {
  const u64 n = tb.n, q = tb.mod.value;
  const double qd = static_cast<double>(q), qinv = 1.0 / qd;
  const __m256d vq = _mm256_set1_pd(qd);
  std::vector<double>& d = t_scratch;
  d.resize(n);
  to_double(a, d.data(), n);
  const ShoupConst* w = tb.psi_rev.data();
  u64 m = 1, t = n >> 1;
  for (; t >= 4; m <<= 1, t >>= 1) {
    for (u64 i = 0; i < m; ++i) {
      const double wd = static_cast<double>(w[m + i].operand);
      const __m256d vw = _mm256_set1_pd(wd), vwq = _mm256_set1_pd(wd * qinv);
      double* x = d.data() + 2 * i * t;
      double* y = x + t;
      for (u64 j = 0; j < t; j += 4) {
        const __m256d u = _mm256_loadu_pd(x + j);
        const __m256d v = mulmod4(_mm256_loadu_pd(y + j), vw, vwq, vq);
        _mm256_storeu_pd(x + j, addmod4(u, v, vq));
        _mm256_storeu_pd(y + j, submod4(u, v, vq));
      }
    }
  }
  // t = 2: groups of four values [x0 x1 y0 y1], two groups per step.
  for (u64 i = 0; i < m; i += 2) {
    double* p = d.data() + 4 * i;
    const __m256d g0 = _mm256_loadu_pd(p), g1 = _mm256_loadu_pd(p + 4);
    const __m256d x = _mm256_permute2f128_pd(g0, g1, 0x20), y = _mm256_permute2f128_pd(g0, g1, 0x31);
    const double w0 = static_cast<double>(w[m + i].operand), w1 = static_cast<double>(w[m + i + 1].operand);
    const __m256d vw = _mm256_setr_pd(w0, w0, w1, w1);
    const __m256d vwq = _mm256_mul_pd(vw, _mm256_set1_pd(qinv));
    const __m256d v = mulmod4(y, vw, vwq, vq);
    const __m256d xo = addmod4(x, v, vq), yo = submod4(x, v, vq);
    _mm256_storeu_pd(p, _mm256_permute2f128_pd(xo, yo, 0x20));
    _mm256_storeu_pd(p + 4, _mm256_permute2f128_pd(xo, yo, 0x31));
  }
  m <<= 1;
  // t = 1: pairs [x y], four pairs per step.
  for (u64 i = 0; i < m; i += 4) {
    double* p = d.data() + 2 * i;
    const __m256d g0 = _mm256_loadu_pd(p), g1 = _mm256_loadu_pd(p + 4);
    const __m256d x = _mm256_unpacklo_pd(g0, g1), y = _mm256_unpackhi_pd(g0, g1);  // [x0 x2 x1 x3]
    const __m256d vw = _mm256_setr_pd(static_cast<double>(w[m + i].operand), static_cast<double>(w[m + i + 2].operand),
                                      static_cast<double>(w[m + i + 1].operand), static_cast<double>(w[m + i + 3].operand));
    const __m256d vwq = _mm256_mul_pd(vw, _mm256_set1_pd(qinv));
    const __m256d v = mulmod4(y, vw, vwq, vq);
    const __m256d xo = addmod4(x, v, vq), yo = submod4(x, v, vq);
    _mm256_storeu_pd(p, _mm256_unpacklo_pd(xo, yo));
    _mm256_storeu_pd(p + 4, _mm256_unpackhi_pd(xo, yo));
  }
  to_u64(d.data(), a, n);
}

__attribute__((target("avx2,fma"))) void ntt_inverse_fma(u64* a, const NttTables& tb) {
  const u64 n = tb.n, q = tb.mod.value, two_q = 2 * q;
  const ShoupConst* w = tb.ipsi_rev.data();
  const double qd = static_cast<double>(q), qinv = 1.0 / qd;
  const __m256d vq = _mm256_set1_pd(qd);
  std::vector<double>& d = t_scratch;
  d.resize(n);
  to_double(a, d.data(), n);
  u64 h = n >> 1, t = 1;
  // t = 1: pairs [x y], four pairs per step; y' = (x - y) * w.
  for (u64 i = 0; i < h; i += 4) {
    double* p = d.data() + 2 * i;
    const __m256d g0 = _mm256_loadu_pd(p), g1 = _mm256_loadu_pd(p + 4);
    const __m256d x = _mm256_unpacklo_pd(g0, g1), y = _mm256_unpackhi_pd(g0, g1);
    const __m256d vw = _mm256_setr_pd(static_cast<double>(w[h + i].operand), static_cast<double>(w[h + i + 2].operand),
                                      static_cast<double>(w[h + i + 1].operand), static_cast<double>(w[h + i + 3].operand));
    const __m256d vwq = _mm256_mul_pd(vw, _mm256_set1_pd(qinv));
    const __m256d xo = addmod4(x, y, vq), yo = mulmod4(submod4(x, y, vq), vw, vwq, vq);
    _mm256_storeu_pd(p, _mm256_unpacklo_pd(xo, yo));
    _mm256_storeu_pd(p + 4, _mm256_unpackhi_pd(xo, yo));
  }
  h >>= 1;
  t <<= 1;
  // t = 2: groups [x0 x1 y0 y1], two groups per step.
  for (u64 i = 0; i < h; i += 2) {
    double* p = d.data() + 4 * i;
    const __m256d g0 = _mm256_loadu_pd(p), g1 = _mm256_loadu_pd(p + 4);
    const __m256d x = _mm256_permute2f128_pd(g0, g1, 0x20), y = _mm256_permute2f128_pd(g0, g1, 0x31);
    const double w0 = static_cast<double>(w[h + i].operand), w1 = static_cast<double>(w[h + i + 1].operand);
    const __m256d vw = _mm256_setr_pd(w0, w0, w1, w1);
    const __m256d vwq = _mm256_mul_pd(vw, _mm256_set1_pd(qinv));
    const __m256d xo = addmod4(x, y, vq), yo = mulmod4(submod4(x, y, vq), vw, vwq, vq);
    _mm256_storeu_pd(p, _mm256_permute2f128_pd(xo, yo, 0x20));
    _mm256_storeu_pd(p + 4, _mm256_permute2f128_pd(xo, yo, 0x31));
  }
  h >>= 1;
  t <<= 1;
  for (; h >= 1; h >>= 1, t <<= 1) {
    const bool last = (h == 1);
    for (u64 i = 0; i < h; ++i) {
      const double wd = static_cast<double>(w[h + i].operand);
      __m256d vw = _mm256_set1_pd(wd), vwq = _mm256_set1_pd(wd * qinv);
      __m256d vn = vw, vnq = vwq;
      if (last) {  // fold N^-1: x * N^-1 and y * (w * N^-1)
        const double ninv = static_cast<double>(tb.n_inv.operand);
        const double wn = static_cast<double>(mul_shoup(w[1].operand, tb.n_inv, q));
        vn = _mm256_set1_pd(ninv);
        vnq = _mm256_set1_pd(ninv * qinv);
        vw = _mm256_set1_pd(wn);
        vwq = _mm256_set1_pd(wn * qinv);
      }
      double* x = d.data() + 2 * i * t;
      double* y = x + t;
      for (u64 j = 0; j < t; j += 4) {
        const __m256d u = _mm256_loadu_pd(x + j), v = _mm256_loadu_pd(y + j);
        __m256d s = addmod4(u, v, vq);
        if (last) s = mulmod4(s, vn, vnq, vq);
        _mm256_storeu_pd(x + j, s);
        _mm256_storeu_pd(y + j, mulmod4(submod4(u, v, vq), vw, vwq, vq));
      }
    }
  }
  to_u64(d.data(), a, n);
}

#else

void ntt_forward_fma(u64*, const NttTables&) {}
void ntt_inverse_fma(u64*, const NttTables&) {}

#endif

}  // namespace ht::cpu
