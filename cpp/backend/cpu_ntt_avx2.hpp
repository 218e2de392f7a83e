// A CPU NTT for the primes the double-precision path cannot take (2^50 <=
// q < 2^61: the base prime, the bootstrapping levels, the special primes) on
// x86-64 with AVX2, chosen at run time like cpu_ntt_fma (HETENSOR_SIMD=0
// forces the portable path). Four 64-bit lanes; the 64x64-bit products are
// built from 32x32-bit ones. Harvey's lazy butterflies with a Shoup quotient
// that drops the low partial products (it may be up to 2 below Shoup's own,
// one more conditional subtraction per product), so values stay in [0, 4q)
// between stages (4q < 2^63) and the outputs are canonical: equal bit for bit
// to the portable NTT (tests compare the two paths).
#pragma once
#include "core/ntt_tables.hpp"

namespace ht::cpu {

// True when the CPU has AVX2, the build supports it, 2^50 <= q < 2^61 (below
// 2^50 the FMA path is faster), n >= 16 and HETENSOR_SIMD is not "0".
bool avx2_ntt_usable(const NttTables& t);
void ntt_forward_avx2(u64* a, const NttTables& t);
void ntt_inverse_avx2(u64* a, const NttTables& t);

}  // namespace ht::cpu
