// Host-side number theory: modular powers and inverses, deterministic
// Miller-Rabin, NTT-friendly prime search (q = 1 mod 2N), primitive roots.
#pragma once
#include <vector>

#include "core/modarith.hpp"

namespace ht {

Modulus make_modulus(u64 q);            // checks 2^20 <= q < 2^61
ShoupConst make_shoup(u64 w, u64 q);    // w < q
u64 pow_mod(u64 base, u64 exp, u64 q);
u64 inv_mod(u64 a, u64 q);              // q prime, a != 0 mod q
bool is_prime(u64 n);
u64 bit_reverse(u64 x, int bits);

// The minimal primitive 2N-th root of unity modulo q (q = 1 mod 2N).
u64 primitive_2n_root(u64 q, u64 n);

// The prime p = 1 mod 2N closest to `target`, not in `taken`, with
// bit length exactly `bits` (so that a prime "of b bits" really has b bits).
u64 closest_ntt_prime(double target, u64 n, int bits, const std::vector<u64>& taken);
// The same within [lo, hi].
u64 closest_ntt_prime_in(double target, u64 n, u64 lo, u64 hi, const std::vector<u64>& taken);

}  // namespace ht
