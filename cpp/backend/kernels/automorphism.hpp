// Galois automorphism X -> X^g applied to a polynomial in the NTT (evaluation)
// domain is a permutation of its N values: out[k] = in[perm[k]], the same
// permutation for every prime. perm is built by core/galois.
#pragma once
#include "core/defs.hpp"

namespace ht::kernels {

HT_HD void automorphism_ntt(u64* out, const u64* in, const u32* perm, u64 k) { out[k] = in[perm[k]]; }

}  // namespace ht::kernels
