// The CPU NTT on x86-64 with AVX2 for every prime below 2^61, chosen at run
// time (cpu_simd: HETENSOR_SIMD=0 forces the portable path). It replaced a
// double-precision FMA NTT that took only primes below 2^50 and was about
// 10% slower on those. Four 64-bit lanes; the 64x64-bit products are
// built from 32x32-bit ones. Harvey's lazy butterflies with a Shoup quotient
// that drops the low partial products (it may be up to 2 below Shoup's own,
// one more conditional subtraction per product), so values stay in [0, 4q)
// between stages (4q < 2^63) and the outputs are canonical: equal bit for bit
// to the portable NTT (tests compare the two paths).
#pragma once
#include "core/ntt_tables.hpp"

namespace ht::cpu {

// True when the SIMD kernels are on (cpu_simd: the CPU has AVX2 and FMA, the
// build supports them, HETENSOR_SIMD is not "0"), q < 2^61 and n >= 16.
bool avx2_ntt_usable(const NttTables& t);
void ntt_forward_avx2(u64* a, const NttTables& t);
void ntt_inverse_avx2(u64* a, const NttTables& t);

}  // namespace ht::cpu
