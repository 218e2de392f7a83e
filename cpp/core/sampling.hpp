// Samplers for CKKS: uniform residues (rejection sampling, no modulo bias),
// uniform ternary and fixed-Hamming-weight ternary secrets, and a rounded
// Gaussian by a cumulative-table lookup scanned in full (no secret-dependent
// branch on the sampled value).
#pragma once
#include <vector>

#include "core/prng.hpp"

namespace ht {

void sample_uniform(Prng& prng, u64 q, u64* out, u64 n);
std::vector<i64> sample_ternary(Prng& prng, u64 n);
std::vector<i64> sample_ternary_hamming(Prng& prng, u64 n, u64 h);
std::vector<i64> sample_gaussian(Prng& prng, u64 n, double sigma);
// A wide rounded Gaussian (sigma from 2^4 to 2^50) for noise flooding.
std::vector<i64> sample_gaussian_wide(Prng& prng, u64 n, double sigma);

}  // namespace ht
