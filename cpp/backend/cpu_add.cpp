#include "backend/cpu_add.hpp"

#include <cstdint>

#include "backend/cpu_simd.hpp"
#include "backend/kernels/elementwise.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HT_HAVE_X86 1
#endif

namespace ht::cpu {

namespace {
void add_portable(u64* out, const u64* a, const u64* b, u64 q, u64 begin, u64 n, bool subtract) {
  if (subtract) for (u64 k = begin; k < n; ++k) kernels::sub_limb(out, a, b, q, k);
  else for (u64 k = begin; k < n; ++k) kernels::add_limb(out, a, b, q, k);
}

#ifdef HT_HAVE_X86
// Four lanes: s = a + b (or a - b + q), minus q where s >= q. Values stay
// below 2^63, so the signed compare is the unsigned one.
template <bool Subtract, bool Stream>
__attribute__((target("avx2"))) void add_avx2(u64* out, const u64* a, const u64* b, u64 q, u64 n) {
  const __m256i vq = _mm256_set1_epi64x(static_cast<long long>(q));
  const __m256i vq1 = _mm256_set1_epi64x(static_cast<long long>(q - 1));
  for (u64 k = 0; k + 4 <= n; k += 4) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k));
    const __m256i s = Subtract ? _mm256_add_epi64(_mm256_sub_epi64(x, y), vq) : _mm256_add_epi64(x, y);
    const __m256i over = _mm256_cmpgt_epi64(s, vq1);                      // s >= q
    const __m256i r = _mm256_sub_epi64(s, _mm256_and_si256(over, vq));
    if (Stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(out + k), r);
    else _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), r);
  }
}
#endif
}  // namespace

void add_limbs(u64* out, const u64* a, const u64* b, u64 q, u64 n, bool subtract, bool streaming) {
#ifdef HT_HAVE_X86
  if (simd_enabled() && q < (u64(1) << 62)) {
    const bool aligned = (reinterpret_cast<std::uintptr_t>(out) & 31) == 0;
    const bool stream = streaming && aligned;
    if (subtract) stream ? add_avx2<true, true>(out, a, b, q, n) : add_avx2<true, false>(out, a, b, q, n);
    else stream ? add_avx2<false, true>(out, a, b, q, n) : add_avx2<false, false>(out, a, b, q, n);
    add_portable(out, a, b, q, n - n % 4, n, subtract);
    if (stream) _mm_sfence();
    return;
  }
#endif
  add_portable(out, a, b, q, 0, n, subtract);
}

}  // namespace ht::cpu
