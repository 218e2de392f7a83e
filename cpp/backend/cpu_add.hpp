// CPU launcher for limb-wise modular addition and subtraction of whole
// ciphertexts: out = a +- b mod q over `n` words. On x86-64 with AVX2 (chosen
// at run time, HETENSOR_SIMD=0 forces the portable path) four lanes at a time,
// and large outputs are written with streaming stores so that a fresh output
// buffer is not read into the cache first (a quarter of the memory traffic
// of an add). Results equal kernels::add_limb / sub_limb bit for bit.
// Invariant: inputs in [0, q), q < 2^62, so a + b and a - b + q fit in the
// signed 64-bit range that the AVX2 compare needs.
#pragma once
#include "core/defs.hpp"

namespace ht::cpu {

// `streaming`: write around the cache (for outputs larger than the cache);
// the call ends with a store fence, so the output is visible once it returns.
void add_limbs(u64* out, const u64* a, const u64* b, u64 q, u64 n, bool subtract, bool streaming);

}  // namespace ht::cpu
