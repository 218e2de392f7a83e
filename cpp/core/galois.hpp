// Galois elements of Z[X]/(X^N + 1): slot rotation by k is X -> X^(5^k mod 2N),
// conjugation is X -> X^(2N - 1). In the bit-reversed NTT domain an
// automorphism is the permutation built here.
#pragma once
#include <vector>

#include "core/defs.hpp"

namespace ht {

// Normalizes a rotation step to [0, slots).
long normalize_step(long step, u64 slots);
u64 galois_element_for_step(long step, u64 n);   // rotation: out[i] = in[i + step]
inline u64 galois_element_conjugate(u64 n) { return 2 * n - 1; }

// perm[k] such that (sigma_g a)_ntt[k] = a_ntt[perm[k]] for the NTT of cpu_ntt.
std::vector<u32> galois_permutation_ntt(u64 galois_elt, u64 n);

}  // namespace ht
