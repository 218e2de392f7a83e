// Composed rotations: a slot rotation by any step as a sum of signed powers of
// two (the non-adjacent form of the step or of step - slots, whichever is
// shorter), so that keys for +-2^k alone serve every rotation
// (the "power-of-two" key policy): at most log2(slots) / 2 + 1 key switches.
#pragma once
#include <cstdlib>
#include <vector>

namespace ht {

inline std::vector<long> power_of_two_terms(long step, long slots) {
  long s = ((step % slots) + slots) % slots;
  std::vector<long> best;
  if (s == 0) return best;
  for (long v : {s, s - slots}) {
    std::vector<long> terms;
    long x = v;
    long e = 0;
    while (x != 0) {
      if (x & 1) {
        const long d = 2 - (((x % 4) + 4) % 4);  // +1 when x = 1 mod 4, -1 when x = 3 mod 4
        terms.push_back(d * (1L << e));
        x -= d;
      }
      x /= 2;
      ++e;
    }
    if (best.empty() || terms.size() < best.size()) best = terms;
  }
  return best;
}

}  // namespace ht
