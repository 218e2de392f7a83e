// Hybrid key switching (Han-Ki 2020; Kim et al. 2021 for the hoisted form).
//  decompose: INTT, split the primes of Q_level into dnum digits, ModUp each
//             digit to Q_level + P by fast basis conversion, NTT.
//  inner_product: sum_j ext_j * key_j over Q_level + P, optionally through an
//             automorphism (hoisting: decompose once, rotate many times).
//  mod_down:  divide by P with rounding and return to Q_level.
// Adds noise of the order of dnum * N * sigma * (digit / P) + rounding; the
// presets keep P >= the largest digit.
#pragma once
#include "ckks/tables.hpp"
#include "ckks/keys.hpp"
#include "runtime/buffer.hpp"

namespace ht {

struct Decomposition {
  Buffer ext;       // [digits][level + 1 + alpha][N], NTT domain
  int level = 0;
  int digits = 0;
  int ext_limbs() const { return level + 1 + alpha; }
  int alpha = 0;
  const u64* digit(int j, u64 n) const { return ext.data() + static_cast<size_t>(j) * ext_limbs() * n; }
};

Decomposition decompose(const Tables& ctx, const u64* d_ntt, int level);

// out0, out1: [level + 1 + alpha][N]. `perm` (nullable) permutes the
// decomposition's NTT values first (a Galois automorphism).
void inner_product(const Tables& ctx, const Decomposition& dec, const SwitchKey& key, const u32* perm,
                   u64* out0, u64* out1);

// ext: [level + 1 + alpha][N] NTT. out: [level + 1][N] NTT, overwritten
// (or added to when `accumulate`).
void mod_down(const Tables& ctx, const u64* ext, int level, u64* out, bool accumulate);

// ModDown and rescale fused: ext [level + 1 + alpha][N] NTT holding P * x + y
// -> out [level][N] NTT, round((P * x + y) / (P * q_level)). Saves the
// separate rescale's inverse and forward NTTs after relinearization.
void mod_down_rescale(const Tables& ctx, const u64* ext, int level, u64* out);

}  // namespace ht
