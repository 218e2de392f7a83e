// Stages run two at a time (radix-4 in registers) while a block holds at least
// four lanes, like the portable NTT; the last two forward (first two inverse)
// stages shuffle pairs and quads of lanes. The Shoup quotient of y * w is
// y_hi * w'_hi + (y_hi * w'_lo >> 32) + (y_lo * w'_hi >> 32) (w' = floor(w *
// 2^64 / q)): it drops y_lo * w'_lo and two carries, so it is at most 2 below
// floor(y * w' / 2^64) and y * w - quotient * q lies in [0, 4q).
#include "backend/cpu_ntt_avx2.hpp"

#include "backend/cpu_simd.hpp"
#include "core/numth.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HT_HAVE_X86 1
#endif

namespace ht::cpu {

bool avx2_ntt_usable(const NttTables& t) {
#ifdef HT_HAVE_X86
  return t.mod.value < (u64(1) << 61) && t.n >= 16 && simd_enabled();
#else
  return false;
#endif
}

#ifdef HT_HAVE_X86

#define HT_AVX2 __attribute__((target("avx2"))) inline
// The stage helpers below hold whole loops: forced inline so that each
// transform compiles to the same code as with the loops written in place.
#define HT_AVX2_FLAT __attribute__((target("avx2"), always_inline)) inline

namespace {

// The modulus in every lane: q (its low half is what _mm256_mul_epu32 reads), q with its 32-bit halves
// swapped, 2q, 2q - 1, q - 1.
struct Q4 {
  __m256i q, q_swap, two_q, two_q_m1, q_m1;
};
// A twiddle w (also with its halves swapped) and its Shoup quotient w' (also w' >> 32), in every lane or one per lane.
struct W4 {
  __m256i w, w_swap, wq, wq_hi;
};

HT_AVX2 Q4 make_q4(u64 q) {
  return Q4{_mm256_set1_epi64x(static_cast<long long>(q)),
            _mm256_set1_epi64x(static_cast<long long>((q >> 32) | (q << 32))),
            _mm256_set1_epi64x(static_cast<long long>(2 * q)), _mm256_set1_epi64x(static_cast<long long>(2 * q - 1)),
            _mm256_set1_epi64x(static_cast<long long>(q - 1))};
}
HT_AVX2 W4 make_w4(__m256i w, __m256i wq) {
  return W4{w, _mm256_shuffle_epi32(w, 0xb1), wq, _mm256_srli_epi64(wq, 32)};
}
HT_AVX2 W4 bcast(const ShoupConst& c) {
  return make_w4(_mm256_set1_epi64x(static_cast<long long>(c.operand)),
                 _mm256_set1_epi64x(static_cast<long long>(c.quotient)));
}
// Lanes (a, b, c, d) of a twiddle table.
HT_AVX2 W4 lanes(const ShoupConst& a, const ShoupConst& b, const ShoupConst& c, const ShoupConst& d) {
  return make_w4(_mm256_setr_epi64x(static_cast<long long>(a.operand), static_cast<long long>(b.operand),
                                    static_cast<long long>(c.operand), static_cast<long long>(d.operand)),
                 _mm256_setr_epi64x(static_cast<long long>(a.quotient), static_cast<long long>(b.quotient),
                                    static_cast<long long>(c.quotient), static_cast<long long>(d.quotient)));
}

// x - (x > bound ? sub : 0), for x < 2^63 (signed compare).
HT_AVX2 __m256i csub(__m256i x, __m256i bound, __m256i sub) {
  return _mm256_sub_epi64(x, _mm256_and_si256(_mm256_cmpgt_epi64(x, bound), sub));
}

// x * y mod 2^64 (y_swap: y with its 32-bit halves swapped): the two cross
// products' low halves come from one 32-bit multiply.
HT_AVX2 __m256i mul_lo64(__m256i x, __m256i y, __m256i y_swap) {
  const __m256i cross = _mm256_mullo_epi32(x, y_swap);
  return _mm256_add_epi64(_mm256_mul_epu32(x, y),
                          _mm256_slli_epi64(_mm256_add_epi64(cross, _mm256_srli_epi64(cross, 32)), 32));
}

// y * w mod q in [0, 2q) for y < 2^63.
HT_AVX2 __m256i mul_shoup_lazy4(__m256i y, const W4& w, const Q4& c) {
  const __m256i y_hi = _mm256_srli_epi64(y, 32);
  __m256i qt = _mm256_mul_epu32(y_hi, w.wq_hi);
  qt = _mm256_add_epi64(qt, _mm256_srli_epi64(_mm256_mul_epu32(y_hi, w.wq), 32));
  qt = _mm256_add_epi64(qt, _mm256_srli_epi64(_mm256_mul_epu32(y, w.wq_hi), 32));
  const __m256i prod = mul_lo64(y, w.w, w.w_swap), sub = mul_lo64(qt, c.q, c.q_swap);
  return csub(_mm256_sub_epi64(prod, sub), c.two_q_m1, c.two_q);  // [0, 4q) -> [0, 2q)
}

// Cooley-Tukey: (x, y) -> (x + w y, x - w y), inputs and outputs in [0, 4q).
HT_AVX2 void ct4(__m256i& x, __m256i& y, const W4& w, const Q4& c) {
  const __m256i u = csub(x, c.two_q_m1, c.two_q);
  const __m256i v = mul_shoup_lazy4(y, w, c);
  x = _mm256_add_epi64(u, v);
  y = _mm256_add_epi64(_mm256_sub_epi64(u, v), c.two_q);
}

// Gentleman-Sande: (x, y) -> (x + y, (x - y) w), inputs and outputs in [0, 2q).
HT_AVX2 void gs4(__m256i& x, __m256i& y, const W4& w, const Q4& c) {
  const __m256i u = x, v = y;
  x = csub(_mm256_add_epi64(u, v), c.two_q_m1, c.two_q);
  y = mul_shoup_lazy4(_mm256_add_epi64(_mm256_sub_epi64(u, v), c.two_q), w, c);
}

// The last inverse stage: ((x + y) N^-1, (x - y) w N^-1), both in [0, q).
HT_AVX2 void gs4_last(__m256i& x, __m256i& y, const W4& ninv, const W4& w_ninv, const Q4& c) {
  const __m256i u = x, v = y;
  x = csub(mul_shoup_lazy4(_mm256_add_epi64(u, v), ninv, c), c.q_m1, c.q);
  y = csub(mul_shoup_lazy4(_mm256_add_epi64(_mm256_sub_epi64(u, v), c.two_q), w_ninv, c), c.q_m1, c.q);
}

HT_AVX2 __m256i load(const u64* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
HT_AVX2 void store(u64* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

// Cooley-Tukey (forward) or Gentleman-Sande (inverse).
template <bool Inverse>
HT_AVX2_FLAT void butterfly4(__m256i& x, __m256i& y, const W4& w, const Q4& c) {
  if constexpr (Inverse) gs4(x, y, w, c);
  else ct4(x, y, w, c);
}

// The stage of half-size t = 2: `groups` groups [x0 x1 y0 y1], two per step, twiddles w[groups + i].
template <bool Inverse>
HT_AVX2_FLAT void stage_t2(u64* a, const ShoupConst* w, u64 groups, const Q4& c) {
  for (u64 i = 0; i < groups; i += 2) {
    u64* p = a + 4 * i;
    const __m256i g0 = load(p), g1 = load(p + 4);
    __m256i x = _mm256_permute2x128_si256(g0, g1, 0x20), y = _mm256_permute2x128_si256(g0, g1, 0x31);
    butterfly4<Inverse>(x, y, lanes(w[groups + i], w[groups + i], w[groups + i + 1], w[groups + i + 1]), c);
    store(p, _mm256_permute2x128_si256(x, y, 0x20));
    store(p + 4, _mm256_permute2x128_si256(x, y, 0x31));
  }
}

// The stage of half-size t = 1: `groups` pairs [x y], four per step (lanes
// hold pairs 0, 2, 1, 3). Forward it is the last stage: outputs reduced to [0, q).
template <bool Inverse>
HT_AVX2_FLAT void stage_t1(u64* a, const ShoupConst* w, u64 groups, const Q4& c) {
  for (u64 i = 0; i < groups; i += 4) {
    u64* p = a + 2 * i;
    const __m256i g0 = load(p), g1 = load(p + 4);
    __m256i x = _mm256_unpacklo_epi64(g0, g1), y = _mm256_unpackhi_epi64(g0, g1);
    butterfly4<Inverse>(x, y, lanes(w[groups + i], w[groups + i + 2], w[groups + i + 1], w[groups + i + 3]), c);
    if constexpr (!Inverse) {
      x = csub(csub(x, c.two_q_m1, c.two_q), c.q_m1, c.q);
      y = csub(csub(y, c.two_q_m1, c.two_q), c.q_m1, c.q);
    }
    store(p, _mm256_unpacklo_epi64(x, y));
    store(p + 4, _mm256_unpackhi_epi64(x, y));
  }
}

}  // namespace

__attribute__((target("avx2"))) void ntt_forward_avx2(u64* a, const NttTables& tb) {
  const u64 n = tb.n;
  const Q4 c = make_q4(tb.mod.value);
  const ShoupConst* w = tb.psi_rev.data();
  u64 m = 1, t = n >> 1;
  // Two stages at once: (m, t) then (2m, t/2), while t/2 >= 4.
  for (; t >= 8; m <<= 2, t >>= 2) {
    const u64 h = t >> 1;
    for (u64 i = 0; i < m; ++i) {
      const W4 w1 = bcast(w[m + i]), w2a = bcast(w[2 * m + 2 * i]), w2b = bcast(w[2 * m + 2 * i + 1]);
      u64* x0 = a + 2 * i * t;
      u64* x1 = x0 + h;
      u64* x2 = x0 + t;
      u64* x3 = x2 + h;
      for (u64 j = 0; j < h; j += 4) {
        __m256i v0 = load(x0 + j), v1 = load(x1 + j), v2 = load(x2 + j), v3 = load(x3 + j);
        ct4(v0, v2, w1, c);
        ct4(v1, v3, w1, c);
        ct4(v0, v1, w2a, c);
        ct4(v2, v3, w2b, c);
        store(x0 + j, v0); store(x1 + j, v1); store(x2 + j, v2); store(x3 + j, v3);
      }
    }
  }
  if (t == 4) {  // an odd stage count above the last two: one radix-2 stage
    for (u64 i = 0; i < m; ++i) {
      u64* x = a + 8 * i;
      __m256i u = load(x), v = load(x + 4);
      ct4(u, v, bcast(w[m + i]), c);
      store(x, u); store(x + 4, v);
    }
    m <<= 1;
  }
  stage_t2<false>(a, w, m, c);      // t = 2
  stage_t1<false>(a, w, m << 1, c);  // t = 1
}

__attribute__((target("avx2"))) void ntt_inverse_avx2(u64* a, const NttTables& tb) {
  const u64 n = tb.n, q = tb.mod.value;
  const Q4 c = make_q4(q);
  const ShoupConst* w = tb.ipsi_rev.data();
  stage_t1<true>(a, w, n >> 1, c);  // t = 1
  stage_t2<true>(a, w, n >> 2, c);  // t = 2
  u64 h = n >> 3, t = 4;
  // log_n - 2 stages remain (n >= 16: at least 2); an odd count starts with one radix-2 stage.
  if ((tb.log_n - 2) % 2 == 1) {
    for (u64 i = 0; i < h; ++i) {
      const W4 wi = bcast(w[h + i]);
      u64* x = a + 2 * i * t;
      u64* y = x + t;
      for (u64 j = 0; j < t; j += 4) {
        __m256i u = load(x + j), v = load(y + j);
        gs4(u, v, wi, c);
        store(x + j, u); store(y + j, v);
      }
    }
    h >>= 1;
    t <<= 1;
  }
  const W4 ninv = bcast(tb.n_inv), w_ninv = bcast(make_shoup(mul_shoup(w[1].operand, tb.n_inv, q), q));
  // Two stages at once: (h, t) then (h/2, 2t); the last pair folds in N^-1.
  for (; h >= 2; h >>= 2, t <<= 2) {
    const bool last = (h == 2);
    for (u64 i = 0; i < (h >> 1); ++i) {
      const W4 w1a = bcast(w[h + 2 * i]), w1b = bcast(w[h + 2 * i + 1]), w2 = bcast(w[(h >> 1) + i]);
      u64* x0 = a + 4 * i * t;
      u64* x1 = x0 + t;
      u64* x2 = x0 + 2 * t;
      u64* x3 = x2 + t;
      for (u64 j = 0; j < t; j += 4) {
        __m256i v0 = load(x0 + j), v1 = load(x1 + j), v2 = load(x2 + j), v3 = load(x3 + j);
        gs4(v0, v1, w1a, c);
        gs4(v2, v3, w1b, c);
        if (last) {
          gs4_last(v0, v2, ninv, w_ninv, c);
          gs4_last(v1, v3, ninv, w_ninv, c);
        } else {
          gs4(v0, v2, w2, c);
          gs4(v1, v3, w2, c);
        }
        store(x0 + j, v0); store(x1 + j, v1); store(x2 + j, v2); store(x3 + j, v3);
      }
    }
  }
}

#undef HT_AVX2
#undef HT_AVX2_FLAT

#else

void ntt_forward_avx2(u64*, const NttTables&) {}
void ntt_inverse_avx2(u64*, const NttTables&) {}

#endif

}  // namespace ht::cpu
