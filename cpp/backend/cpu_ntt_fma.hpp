// A faster CPU NTT for primes below 2^50 on x86-64 with AVX2 and FMA, chosen
// at run time (HETENSOR_SIMD=0 forces the portable path). Residues are
// carried as doubles, which hold them exactly; a product y*w is split into an
// exact high and low part with FMA (Dekker), the quotient estimate comes from
// y * (w/q), and the remainder is exact, so every stage outputs canonical
// residues. Outputs equal the portable NTT's bit for
// bit (both are canonical); tests compare the two paths.
#pragma once
#include "core/ntt_tables.hpp"

namespace ht::cpu {

// True when the CPU has AVX2 and FMA, the build supports them, q < 2^50 and
// HETENSOR_SIMD is not "0".
bool fma_ntt_usable(const NttTables& t);
void ntt_forward_fma(u64* a, const NttTables& t);
void ntt_inverse_fma(u64* a, const NttTables& t);
// Process-wide switch (tests compare the paths): false forces the portable NTT.
void set_simd_enabled(bool enabled);
bool simd_enabled();

}  // namespace ht::cpu
