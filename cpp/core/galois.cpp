#include "core/galois.hpp"

#include "core/numth.hpp"

namespace ht {

long normalize_step(long step, u64 slots) {
  const long s = static_cast<long>(slots);
  long r = step % s;
  return r < 0 ? r + s : r;
}

u64 galois_element_for_step(long step, u64 n) {
  const u64 slots = n / 2, m = 2 * n;
  return pow_mod(5, static_cast<u64>(normalize_step(step, slots)), m);
}

std::vector<u32> galois_permutation_ntt(u64 g, u64 n) {
  int log_n = 0;
  while ((u64(1) << log_n) < n) ++log_n;
  const u64 mask = 2 * n - 1;
  std::vector<u32> perm(n);
  for (u64 k = 0; k < n; ++k) {
    // NTT slot k holds the evaluation at psi^(2*bitrev(k)+1).
    const u64 e = 2 * bit_reverse(k, log_n) + 1;
    const u64 eg = (e * g) & mask;
    perm[k] = static_cast<u32>(bit_reverse((eg - 1) >> 1, log_n));
  }
  return perm;
}

}  // namespace ht
