// CKKS parameters: a public, unchecked literal (ParamsLiteral) validated into
// an immutable Params with concrete primes. Validation states why a literal is
// refused; the security check raises SecurityError unless the literal opts
// into insecure parameters explicitly.
#pragma once
#include <string>
#include <vector>

#include "core/defs.hpp"

namespace ht {

struct ParamsLiteral {
  std::string name;
  int log_n = 0;
  int first_prime_bits = 60;      // q_0: holds the message at the last level
  int scale_bits = 40;            // log2 of the default scale; q_1..q_L have this size
  int levels = 0;                 // L: multiplications before the chain is used up
  // Optional sizes of q_1 .. q_L (index l - 1), for chains whose levels differ
  // (bootstrapping wants large primes where it works); empty: all scale_bits.
  // A run of equal sizes is a region: its canonical scale follows
  // s_{l-1} = s_l^2 / q_l; crossing to another size resets it to the new size.
  std::vector<int> level_bits;
  int special_prime_bits = 60;    // size of each prime of P
  int special_primes = 0;         // alpha: number of primes of P (0: derive from dnum)
  int dnum = 1;                   // number of key-switching digits
  int hamming_weight = 0;         // 0: uniform ternary secret; else exactly h nonzeros
  double sigma = 3.2;             // error standard deviation
  bool allow_insecure = false;    // explicit opt-out of the security check
};

class Params {
 public:
  explicit Params(const ParamsLiteral& lit);

  const ParamsLiteral& literal() const { return lit_; }
  const std::string& name() const { return lit_.name; }
  int log_n() const { return lit_.log_n; }
  u64 n() const { return u64(1) << lit_.log_n; }
  u64 slots() const { return n() / 2; }
  int max_level() const { return lit_.levels; }
  int dnum() const { return lit_.dnum; }
  double default_scale() const { return scales_.back(); }
  double scale_at(int level) const { return scales_[level]; }   // canonical scale of a level
  int level_bits(int level) const;                               // nominal size of q_level (level >= 1)
  double sigma() const { return lit_.sigma; }
  int hamming_weight() const { return lit_.hamming_weight; }
  const std::vector<u64>& q() const { return q_; }   // q_0 .. q_L
  const std::vector<u64>& p() const { return p_; }   // special primes
  int alpha() const { return static_cast<int>(p_.size()); }
  // Digit j covers Q primes [digit_begin(j), digit_end(j)).
  int digit_size() const { return digit_size_; }
  double log_q() const;
  double log_qp() const;
  int security_bound() const;   // max log2(QP) at 128 bits, -1 if unknown
  // Why the parameters miss the 128-bit HE standard (log QP, sigma, secret
  // distribution); empty when they meet it.
  std::string security_problem() const;
  bool is_secure() const { return security_problem().empty(); }
  // A stable fingerprint of everything that defines the ring and the chain.
  u64 hash() const;
  std::string describe() const;

 private:
  ParamsLiteral lit_;
  std::vector<u64> q_, p_;
  std::vector<double> scales_;
  int digit_size_ = 0;
};

}  // namespace ht
