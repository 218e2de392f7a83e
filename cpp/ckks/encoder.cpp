#include "ckks/encoder.hpp"

#include <cmath>
#include <sstream>

#include "backend/backend.hpp"
#include "core/error.hpp"
#include "core/numth.hpp"
#include "runtime/parallel.hpp"

namespace ht {

Encoder::Encoder(std::shared_ptr<const Tables> ctx) : ctx_(std::move(ctx)), fft_(ctx_->n()) {
  const int limbs = std::min(3, ctx_->max_level() + 1);
  garner_inv_.assign(limbs, std::vector<u64>(limbs, 0));
  for (int i = 0; i < limbs; ++i)
    for (int j = 0; j < i; ++j) garner_inv_[i][j] = inv_mod(ctx_->prime(j) % ctx_->prime(i), ctx_->prime(i));
}

std::vector<std::vector<i64>> Encoder::rounded_coefficients(const std::complex<double>* values, int batch,
                                                            u64 count, double scale, double* bound) const {
  const Tables& c = *ctx_;
  const u64 n = c.n(), slots = c.slots();
  if (count > slots) fail("encode", std::to_string(count) + " values exceed the " + std::to_string(slots) + " slots");
  if (!(scale > 0) || !std::isfinite(scale)) fail("encode", "scale must be positive and finite");
  *bound = 0;
  for (size_t i = 0; i < static_cast<size_t>(batch) * count; ++i) *bound = std::max(*bound, std::abs(values[i]));
  std::vector<double> max_abs(batch, 0.0);
  std::vector<char> non_finite(batch, 0);
  std::vector<std::vector<i64>> coeffs(batch, std::vector<i64>(n));
  parallel_for(batch, [&](size_t b) {
    std::vector<std::complex<double>> z(slots);
    for (u64 j = 0; j < count; ++j) z[j] = values[b * count + j];
    std::vector<double> m(n);
    fft_.slots_to_coeffs(z.data(), m.data());
    double mx = 0;
    for (u64 k = 0; k < n; ++k) {
      const double v = m[k] * scale;
      if (!std::isfinite(v)) { non_finite[b] = 1; break; }
      mx = std::max(mx, std::fabs(v));
      if (mx < 4.0e18) coeffs[b][k] = std::llround(v);
    }
    max_abs[b] = mx;
  });
  for (int b = 0; b < batch; ++b) {
    if (non_finite[b]) fail("encode", "values are not finite (NaN or Inf)");
    if (max_abs[b] >= 4.0e18) {
      std::ostringstream os;
      os << "values too large for the scale: a coefficient reaches " << max_abs[b]
         << " >= 2^62 at scale 2^" << std::log2(scale) << "; scale the values down";
      fail("encode", os.str());
    }
  }
  return coeffs;
}

void Encoder::reduce_to_limbs(const std::vector<std::vector<i64>>& coeffs, const std::vector<int>& primes,
                              PolyBatch& out) const {
  const Tables& c = *ctx_;
  const u64 n = c.n();
  const int batch = static_cast<int>(coeffs.size()), limbs = static_cast<int>(primes.size());
  parallel_for(static_cast<size_t>(batch) * limbs, [&](size_t idx) {
    const int b = static_cast<int>(idx / limbs), i = static_cast<int>(idx % limbs);
    const Modulus& mod = c.modulus(primes[i]);
    const u64 q = mod.value;
    u64* o = out.limb(b, 0, i);
    const i64* m = coeffs[b].data();
    // Barrett, not a division per coefficient (|m| < 2^62).
    for (u64 k = 0; k < n; ++k) {
      const u64 r = reduce_u64(static_cast<u64>(m[k] >= 0 ? m[k] : -m[k]), mod);
      o[k] = (m[k] >= 0 || r == 0) ? r : q - r;
    }
    backend::ntt_forward(o, c.ntt(primes[i]));
  });
}

Plaintext Encoder::encode(const std::complex<double>* values, int batch, u64 count, int level,
                          double scale) const {
  const Tables& c = *ctx_;
  if (level < 0 || level > c.max_level()) fail("encode", "level " + std::to_string(level) + " is not in the chain");
  double bound = 0;
  const auto coeffs = rounded_coefficients(values, batch, count, scale, &bound);
  Plaintext pt(c.n(), batch, 1, level, scale, c.id(), false, false);
  pt.bound = bound;
  std::vector<int> primes(level + 1);
  for (int i = 0; i <= level; ++i) primes[i] = i;
  reduce_to_limbs(coeffs, primes, pt);
  return pt;
}

Plaintext Encoder::encode_extended(const std::complex<double>* values, u64 count, int level, double scale) const {
  const Tables& c = *ctx_;
  if (level < 0 || level > c.max_level()) fail("encode", "level " + std::to_string(level) + " is not in the chain");
  double bound = 0;
  const auto coeffs = rounded_coefficients(values, 1, count, scale, &bound);
  // level + 1 + alpha limbs: held as a PolyBatch of that many limbs.
  Plaintext pt(c.n(), 1, 1, level + c.alpha(), scale, c.id(), false, false);
  pt.bound = bound;
  std::vector<int> primes;
  for (int i = 0; i <= level; ++i) primes.push_back(i);
  for (int k = 0; k < c.alpha(); ++k) primes.push_back(c.p_index(k));
  reduce_to_limbs(coeffs, primes, pt);
  return pt;
}

void Encoder::decode(const u64* message, int batch, int limbs, double scale, std::complex<double>* out) const {
  const Tables& c = *ctx_;
  const u64 n = c.n(), slots = c.slots();
  if (limbs < 1 || limbs > 3 || limbs > c.max_level() + 1) fail("decode", "needs 1 to 3 limbs");
  std::vector<std::vector<u64>> coef(static_cast<size_t>(batch) * limbs, std::vector<u64>(n));
  parallel_for(static_cast<size_t>(batch) * limbs, [&](size_t idx) {
    const int i = static_cast<int>(idx % limbs);
    std::copy(message + idx * n, message + (idx + 1) * n, coef[idx].begin());
    backend::ntt_inverse(coef[idx].data(), c.ntt(i));
  });
  parallel_for(batch, [&](size_t b) {
    std::vector<double> m(n);
    std::vector<u64> q(limbs);
    std::vector<Modulus> mods(limbs);
    for (int i = 0; i < limbs; ++i) { q[i] = c.prime(i); mods[i] = c.modulus(i); }
    for (u64 k = 0; k < n; ++k) {
      // Garner: mixed-radix digits v_i with x = v_0 + q_0 (v_1 + q_1 v_2).
      u64 v[3] = {0, 0, 0};
      for (int i = 0; i < limbs; ++i) {
        u64 t = coef[b * limbs + i][k];
        for (int j = 0; j < i; ++j)
          t = mul_mod(sub_mod(t, reduce_u64(v[j], mods[i]), q[i]), garner_inv_[i][j], mods[i]);
        v[i] = t;
      }
      // Centered lift: negative when the top digit is in the upper half.
      const bool negative = v[limbs - 1] > (q[limbs - 1] - 1) / 2;
      long double x = 0;
      for (int i = limbs - 1; i >= 0; --i) {
        const u64 d = negative ? q[i] - 1 - v[i] : v[i];
        x = x * static_cast<long double>(q[i]) + static_cast<long double>(d);
      }
      if (negative) x = -(x + 1);
      m[k] = static_cast<double>(x / scale);
    }
    fft_.coeffs_to_slots(m.data(), out + b * slots);
  });
}

}  // namespace ht
