// Tables: validated parameters plus every table derived from them, shared
// read-only by the Engine (which the Python Context holds), its keys and
// every evaluator function (NTT tables of all primes, canonical scales per level, RNS constants for rescale,
// ModUp and ModDown, Galois permutations). Immutable after construction
// except for the Galois permutation cache, which is guarded by a mutex.
//
// Prime indexing: 0..L are q_0..q_L; L+1..L+alpha are the special primes.
// Scales: every ciphertext at level l has the canonical scale s_l, with
// s_L = 2^scale_bits and s_{l-1} = s_l^2 / q_l, so additions never need a
// scale fix-up and level alignment is one constant multiplication.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/switch.hpp"
#include "ckks/params.hpp"
#include "core/ntt_tables.hpp"
#include "core/rns.hpp"

namespace ht {

class Tables {
 public:
  explicit Tables(const ParamsLiteral& literal);
  Tables(const Tables&) = delete;
  Tables& operator=(const Tables&) = delete;

  const Params& params() const { return params_; }
  u64 n() const { return params_.n(); }
  u64 slots() const { return params_.slots(); }
  int max_level() const { return params_.max_level(); }
  int alpha() const { return params_.alpha(); }
  u64 id() const { return id_; }

  const NttTables& ntt(int prime_index) const { return ntt_[prime_index]; }
  const Modulus& modulus(int prime_index) const { return ntt_[prime_index].mod; }
  u64 prime(int prime_index) const { return ntt_[prime_index].mod.value; }
  int p_index(int k) const { return max_level() + 1 + k; }

  double scale_at(int level) const { return scales_[level]; }

  // Rescale at `level`: q_level^-1 mod q_i for i < level.
  const ShoupConst& inv_last(int level, int i) const { return inv_last_[level][i]; }
  // Digits of the key-switching gadget present at `level` (prime ranges).
  int num_digits(int level) const { return level / params_.digit_size() + 1; }
  int digit_begin(int digit) const { return digit * params_.digit_size(); }
  int digit_end(int digit, int level) const {
    const int e = (digit + 1) * params_.digit_size();
    return e < level + 1 ? e : level + 1;
  }
  // ModUp at `level` for `digit`: digit primes -> (Q_level \ digit) + P, in that order.
  const BasisConverter& modup(int level, int digit) const { return modup_[level][digit]; }
  // ModDown at `level`: P -> Q_level.
  const BasisConverter& moddown(int level) const { return moddown_[level]; }
  const ShoupConst& p_inv(int i) const { return p_inv_[i]; }   // P^-1 mod q_i
  const ShoupConst& p_mod(int i) const { return p_mod_[i]; }   // P mod q_i
  // ModDown and rescale in one step at `level`: {q_level} + P -> Q_(level-1),
  // and (P * q_level)^-1 mod q_i for i < level.
  const BasisConverter& moddown_rescale(int level) const { return moddown_rescale_[level]; }
  const ShoupConst& pq_inv(int level, int i) const { return pq_inv_[level][i]; }

  // The key-switching constants at `level` in backend terms (views of the
  // tables above), the form Backend::key_switch takes.
  const backend::SwitchConstants& switch_constants(int level) const { return switch_[level]; }

  // Permutation of NTT values for the automorphism X -> X^g (cached).
  const std::vector<u32>& galois_perm(u64 galois_elt) const;

 private:
  Params params_;
  u64 id_;
  std::vector<NttTables> ntt_;
  std::vector<double> scales_;
  std::vector<std::vector<ShoupConst>> inv_last_;
  std::vector<std::vector<BasisConverter>> modup_;
  std::vector<BasisConverter> moddown_;
  std::vector<ShoupConst> p_inv_, p_mod_;
  std::vector<BasisConverter> moddown_rescale_;
  std::vector<std::vector<ShoupConst>> pq_inv_;
  std::vector<backend::SwitchConstants> switch_;
  mutable std::mutex perm_mutex_;
  mutable std::map<u64, std::vector<u32>> perms_;
};

}  // namespace ht
