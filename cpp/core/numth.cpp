#include "core/numth.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace ht {

Modulus make_modulus(u64 q) {
  if (q < (u64(1) << 20) || q >= (u64(1) << 61))
    throw InvalidArgument("modulus " + std::to_string(q) + " must lie in [2^20, 2^61)");
  Modulus m;
  m.value = q;
  m.bits = 64 - __builtin_clzll(q);
  const u128 ratio = ~u128(0) / q;  // = floor(2^128 / q) since q is not a power of two
  m.ratio_lo = static_cast<u64>(ratio);
  m.ratio_hi = static_cast<u64>(ratio >> 64);
  return m;
}

ShoupConst make_shoup(u64 w, u64 q) {
  return ShoupConst{w, static_cast<u64>((u128(w) << 64) / q)};
}

u64 pow_mod(u64 base, u64 exp, u64 q) {
  u128 r = 1, b = base % q;
  while (exp) {
    if (exp & 1) r = (r * b) % q;
    b = (b * b) % q;
    exp >>= 1;
  }
  return static_cast<u64>(r);
}

u64 inv_mod(u64 a, u64 q) {
  if (a % q == 0) throw InvalidArgument("no inverse of 0 modulo " + std::to_string(q));
  return pow_mod(a, q - 2, q);
}

bool is_prime(u64 n) {
  if (n < 2) return false;
  for (u64 p : {2ull, 3ull, 5ull, 7ull, 11ull, 13ull, 17ull, 19ull, 23ull, 29ull, 31ull, 37ull}) {
    if (n % p == 0) return n == p;
  }
  u64 d = n - 1;
  int s = 0;
  while ((d & 1) == 0) { d >>= 1; ++s; }
  // These bases make Miller-Rabin deterministic for all 64-bit n.
  for (u64 a : {2ull, 3ull, 5ull, 7ull, 11ull, 13ull, 17ull, 19ull, 23ull, 29ull, 31ull, 37ull}) {
    u128 x = pow_mod(a, d, n);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int r = 1; r < s; ++r) {
      x = (x * x) % n;
      if (x == n - 1) { composite = false; break; }
    }
    if (composite) return false;
  }
  return true;
}

u64 bit_reverse(u64 x, int bits) {
  u64 r = 0;
  for (int i = 0; i < bits; ++i) { r = (r << 1) | (x & 1); x >>= 1; }
  return r;
}

u64 primitive_2n_root(u64 q, u64 n) {
  const u64 order = 2 * n;
  if ((q - 1) % order != 0) throw InvalidArgument("prime is not 1 mod 2N");
  u64 best = 0;
  for (u64 x = 2; x < q; ++x) {
    const u64 g = pow_mod(x, (q - 1) / order, q);
    if (pow_mod(g, n, q) == q - 1) {  // order exactly 2N
      // The minimal primitive root among the odd powers of g: a fixed choice.
      best = g;
      u64 g2 = static_cast<u64>((u128(g) * g) % q), cur = g;
      for (u64 i = 0; i < n; ++i) {
        best = std::min(best, cur);
        cur = static_cast<u64>((u128(cur) * g2) % q);
      }
      return best;
    }
  }
  throw InvalidArgument("no primitive 2N-th root found");
}

u64 closest_ntt_prime(double target, u64 n, int bits, const std::vector<u64>& taken) {
  const u64 lo_bound = u64(1) << (bits - 1), hi_bound = (bits >= 64) ? ~u64(0) : (u64(1) << bits) - 1;
  return closest_ntt_prime_in(target, n, lo_bound, hi_bound, taken);
}

u64 closest_ntt_prime_in(double target, u64 n, u64 lo_bound, u64 hi_bound, const std::vector<u64>& taken) {
  const u64 step = 2 * n;
  double t = std::min(std::max(target, double(lo_bound)), double(hi_bound));
  u64 base = (static_cast<u64>(t) / step) * step + 1;  // = 1 mod 2N, <= t (+1)
  for (u64 k = 0; k < (u64(1) << 40); ++k) {
    // Search outward: base + k*step and base - (k+1)*step.
    const u64 up = base + k * step;
    if (up <= hi_bound && up >= lo_bound && is_prime(up) &&
        std::find(taken.begin(), taken.end(), up) == taken.end())
      return up;
    if (base > (k + 1) * step) {
      const u64 down = base - (k + 1) * step;
      if (down >= lo_bound && down <= hi_bound && is_prime(down) &&
          std::find(taken.begin(), taken.end(), down) == taken.end())
        return down;
    }
    if (up > hi_bound && (base <= (k + 1) * step || base - (k + 1) * step < lo_bound)) break;
  }
  throw InvalidArgument("no NTT-friendly prime in [" + std::to_string(lo_bound) + ", " + std::to_string(hi_bound) +
                        "] for N = " + std::to_string(n));
}

}  // namespace ht
