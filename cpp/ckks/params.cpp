#include "ckks/params.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "ckks/security.hpp"
#include "core/error.hpp"
#include "core/numth.hpp"

namespace ht {

namespace {
void check(bool ok, const std::string& name, const std::string& why) {
  if (!ok) throw InvalidArgument("invalid parameters '" + name + "': " + why);
}
int bit_length(u64 x) { return 64 - __builtin_clzll(x); }
}  // namespace

Params::Params(const ParamsLiteral& lit) : lit_(lit) {
  const std::string& nm = lit.name;
  bool printable = nm.size() <= 256;
  for (unsigned char ch : nm) printable = printable && ch >= 0x20 && ch < 0x7f;
  // (the name reaches Python as str and files as bytes: keep it plain ASCII)
  if (!printable) throw InvalidArgument("invalid parameters: the name must be printable ASCII, at most 256 characters");
  check(lit.log_n >= 10 && lit.log_n <= 17, nm, "log_n must be in [10, 17]");
  check(lit.levels >= 0 && lit.levels <= 60, nm, "levels must be in [0, 60]");
  check(lit.scale_bits >= 32 && lit.scale_bits <= 60, nm, "scale_bits must be in [32, 60]");
  check(lit.first_prime_bits >= lit.scale_bits && lit.first_prime_bits <= 61, nm,
        "first_prime_bits must be in [scale_bits, 61]");
  check(lit.special_prime_bits >= 32 && lit.special_prime_bits <= 61, nm,
        "special_prime_bits must be in [32, 61]");
  check(lit.dnum >= 1 && lit.dnum <= lit.levels + 1 && lit.dnum <= 32, nm, "dnum must be in [1, min(levels + 1, 32)]");
  check(lit.sigma > 0 && lit.sigma < 100, nm, "sigma must be in (0, 100)");
  const u64 n = u64(1) << lit.log_n;
  check(lit.hamming_weight >= 0 && static_cast<u64>(lit.hamming_weight) <= n, nm,
        "hamming_weight must be in [0, N] (0 means a uniform ternary secret)");

  digit_size_ = (lit.levels + 1 + lit.dnum - 1) / lit.dnum;
  check(lit.level_bits.empty() || static_cast<int>(lit.level_bits.size()) == lit.levels, nm,
        "level_bits must be empty or list one size per level (q_1 .. q_L)");
  for (int b : lit.level_bits) check(b >= 32 && b <= 61, nm, "level_bits entries must be in [32, 61]");

  std::vector<u64> taken;
  // q_0: the largest NTT prime of first_prime_bits bits.
  q_.assign(lit.levels + 1, 0);
  q_[0] = closest_ntt_prime(std::ldexp(1.0, lit.first_prime_bits) - 1, n, lit.first_prime_bits, taken);
  taken.push_back(q_[0]);
  // q_L .. q_1 chosen so that the scale after each rescale stays next to the
  // nominal size of its region: s_{l-1} = s_l^2 / q_l with q_l the prime
  // nearest s_l^2 / nominal. The nominal scale sits a little below
  // 2^bits (relative 2^-12) so that primes of exactly that many bits exist on
  // both sides of every target; otherwise all primes fall below the target
  // when they are sparse (large N) and the scale drifts up level after level.
  auto nominal = [&](int l) { return std::ldexp(1.0, level_bits(l < 1 ? 1 : l)) * (1.0 - std::ldexp(1.0, -12)); };
  scales_.assign(lit.levels + 1, 0.0);
  double s = lit.levels >= 1 ? nominal(lit.levels) : std::ldexp(1.0, lit.scale_bits);
  if (lit.levels == 0) scales_[0] = s;
  for (int l = lit.levels; l >= 1; --l) {
    scales_[l] = s;
    const int bits = level_bits(l);
    const bool same_region = (l == 1) || level_bits(l - 1) == bits;
    const double target = same_region ? s * (s / nominal(l - 1)) : nominal(l);
    const u64 ql = closest_ntt_prime(target, n, bits, taken);
    q_[l] = ql;
    taken.push_back(ql);
    s = same_region ? s * (s / static_cast<double>(ql)) : nominal(l - 1);
  }
  if (lit.levels >= 1) scales_[0] = s;

  int alpha = lit.special_primes;
  if (alpha == 0) {
    // P must be at least as large as the largest digit so that key switching
    // adds noise of the order of the rounding error only.
    int digit_bits = 0;
    for (int d = 0; d * digit_size_ <= lit.levels; ++d) {
      int bits = 0;
      for (int i = d * digit_size_; i < std::min((d + 1) * digit_size_, lit.levels + 1); ++i)
        bits += 64 - __builtin_clzll(q_[i]);
      digit_bits = std::max(digit_bits, bits);
    }
    alpha = (digit_bits + lit.special_prime_bits - 1) / lit.special_prime_bits;
  }
  check(alpha >= 1 && alpha <= 60, nm, "special_primes must be in [1, 60]");
  for (int k = 0; k < alpha; ++k) {
    const u64 pk = closest_ntt_prime(std::ldexp(1.0, lit.special_prime_bits) - 1, n,
                                     lit.special_prime_bits, taken);
    p_.push_back(pk);
    taken.push_back(pk);
  }

  if (!lit.allow_insecure) {
    const std::string why = security_problem();
    if (!why.empty())
      throw SecurityError("parameters '" + nm + "': " + why + " (allow_insecure=True is for tests only)");
  }
}

int Params::level_bits(int level) const {
  return lit_.level_bits.empty() ? lit_.scale_bits : lit_.level_bits[level - 1];
}

double Params::log_q() const {
  double s = 0;
  for (u64 x : q_) s += std::log2(static_cast<double>(x));
  return s;
}
double Params::log_qp() const {
  double s = log_q();
  for (u64 x : p_) s += std::log2(static_cast<double>(x));
  return s;
}
int Params::security_bound() const { return he_standard_max_log_qp(lit_.log_n); }
std::string Params::security_problem() const {
  const int bound = security_bound();
  if (bound < 0)
    return "N = 2^" + std::to_string(lit_.log_n) + " is outside the HE-standard table (2^10 .. 2^17)";
  int total_bits = 0;
  for (u64 x : q_) total_bits += bit_length(x);
  for (u64 x : p_) total_bits += bit_length(x);
  if (total_bits > bound)
    return "log2(QP) = " + std::to_string(total_bits) + " bits exceeds the 128-bit HE-standard bound of " +
           std::to_string(bound) + " bits for N = 2^" + std::to_string(lit_.log_n) +
           "; use fewer levels, smaller primes, a larger dnum or a larger N";
  // The table assumes an error of standard deviation about 3.2 (3.19 in
  // OpenFHE); a smaller one leaves fresh ciphertexts almost noiseless.
  if (lit_.sigma < kMinSigma)
    return "sigma = " + std::to_string(lit_.sigma) + " is below the HE-standard error width 3.19";
  // The table assumes a uniform ternary secret (expected weight 2N/3). A
  // fixed-weight secret counts as dense from N/2 nonzeros on (Lattigo's dense
  // presets); sparser secrets need their own estimate.
  if (lit_.hamming_weight != 0 && static_cast<u64>(lit_.hamming_weight) < n() / 2)
    return "a secret of Hamming weight " + std::to_string(lit_.hamming_weight) +
           " is sparse: the HE-standard bound holds for a uniform ternary secret (hamming_weight=0) or a "
           "fixed weight of at least N/2 = " + std::to_string(n() / 2);
  return "";
}

u64 Params::hash() const {
  u64 h = 1469598103934665603ull;  // FNV-1a
  auto mix = [&h](u64 v) {
    for (int i = 0; i < 8; ++i) { h ^= (v >> (8 * i)) & 0xff; h *= 1099511628211ull; }
  };
  mix(static_cast<u64>(lit_.log_n));
  for (u64 x : q_) mix(x);
  mix(0xffff);
  for (u64 x : p_) mix(x);
  mix(static_cast<u64>(lit_.dnum));
  mix(static_cast<u64>(lit_.hamming_weight));
  mix(static_cast<u64>(lit_.sigma * 1e6));
  return h;
}

std::string Params::describe() const {
  std::ostringstream os;
  os << "Params(name='" << lit_.name << "', N=2^" << lit_.log_n << ", levels=" << lit_.levels
     << ", scale=2^" << lit_.scale_bits << ", log2(Q)=" << std::lround(log_q())
     << ", log2(QP)=" << std::lround(log_qp()) << ", dnum=" << lit_.dnum << ", special_primes=" << p_.size()
     << ", secret=" << (lit_.hamming_weight ? "ternary h=" + std::to_string(lit_.hamming_weight) : "uniform ternary")
     << ", " << (is_secure() ? "128-bit secure" : "INSECURE") << ")";
  return os.str();
}

}  // namespace ht
