#include "core/sampling.hpp"

#include <algorithm>
#include <cmath>

namespace ht {

void sample_uniform(Prng& prng, u64 q, u64* out, u64 n) {
  const int bits = 64 - __builtin_clzll(q);
  const u64 mask = bits == 64 ? ~u64(0) : (u64(1) << bits) - 1;
  for (u64 k = 0; k < n; ++k) {
    u64 r;
    do { r = prng.next_u64() & mask; } while (r >= q);
    out[k] = r;
  }
}

std::vector<i64> sample_ternary(Prng& prng, u64 n) {
  std::vector<i64> s(n);
  for (u64 k = 0; k < n; ++k) {
    u32 r;
    do { r = prng.next_u32() >> 24; } while (r >= 255);  // 255 = 3 * 85: unbiased mod 3
    s[k] = static_cast<i64>(r % 3) - 1;
  }
  return s;
}

std::vector<i64> sample_ternary_hamming(Prng& prng, u64 n, u64 h) {
  std::vector<i64> s(n, 0);
  std::vector<u64> idx(n);
  for (u64 k = 0; k < n; ++k) idx[k] = k;
  // Partial Fisher-Yates with rejection-sampled indices picks h distinct positions.
  for (u64 k = 0; k < h; ++k) {
    const u64 range = n - k;
    const u64 limit = ~u64(0) - (~u64(0) % range);
    u64 r;
    do { r = prng.next_u64(); } while (r >= limit);
    std::swap(idx[k], idx[k + r % range]);
    s[idx[k]] = (prng.next_u32() & 1) ? 1 : -1;
  }
  return s;
}

std::vector<i64> sample_gaussian(Prng& prng, u64 n, double sigma) {
  // Cumulative table of |x| for the discrete Gaussian rho(x) = exp(-x^2 / 2 sigma^2),
  // cut at 6 sigma, as 63-bit fixed point.
  const int bound = static_cast<int>(std::ceil(6 * sigma));
  std::vector<long double> w(bound + 1);
  long double total = 0;
  for (int x = 0; x <= bound; ++x) {
    w[x] = std::exp(-static_cast<long double>(x) * x / (2.0L * sigma * sigma)) * (x == 0 ? 1 : 2);
    total += w[x];
  }
  std::vector<u64> cdt(bound + 1);
  long double acc = 0;
  for (int x = 0; x <= bound; ++x) {
    acc += w[x] / total;
    cdt[x] = static_cast<u64>(std::min(acc, 1.0L) * 9223372036854775807.0L);
  }
  std::vector<i64> e(n);
  for (u64 k = 0; k < n; ++k) {
    const u64 r = prng.next_u64();
    const u64 u = r >> 1;
    i64 mag = 0;
    for (int x = 0; x < bound; ++x) mag += (u >= cdt[x]) ? 1 : 0;  // full scan
    const i64 sign = static_cast<i64>(r & 1) * 2 - 1;
    e[k] = mag * sign;
  }
  return e;
}

std::vector<i64> sample_gaussian_wide(Prng& prng, u64 n, double sigma) {
  // Box-Muller on 53-bit uniforms, rounded: for sigma >= 2^4 the rounded
  // normal is statistically close to the discrete Gaussian, and flooding only
  // needs its width. Cut at 2^60 so the values fit add_small_poly_ntt.
  std::vector<i64> e(n);
  const double two_pi = 6.283185307179586, cap = std::ldexp(1.0, 60);
  for (u64 k = 0; k < n; k += 2) {
    const double u1 = (static_cast<double>(prng.next_u64() >> 11) + 1.0) * std::ldexp(1.0, -53);
    const double u2 = static_cast<double>(prng.next_u64() >> 11) * std::ldexp(1.0, -53);
    const double r = sigma * std::sqrt(-2.0 * std::log(u1));
    const double z[2] = {r * std::cos(two_pi * u2), r * std::sin(two_pi * u2)};
    for (int t = 0; t < 2 && k + t < n; ++t) e[k + t] = static_cast<i64>(std::llround(std::clamp(z[t], -cap, cap)));
  }
  return e;
}

}  // namespace ht
