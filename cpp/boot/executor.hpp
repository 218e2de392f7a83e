// The whole bootstrapping circuit in one call (Cheon-Han-Kim-Kim-Song 2018,
// with the Chen-Chillotti-Song factorised DFT and the Han-Ki cosine /
// double-angle EvalMod, Bossuat et al.'s sparse-secret encapsulation):
//   classic:   ModRaise -> CoeffToSlot -> EvalMod -> SlotToCoeff
//   stc_first: SlotToCoeff on the input's last levels -> ModRaise -> CoeffToSlot -> EvalMod
// A BootPlan holds what the planner (hetensor/boot.py) chose: the encoded
// transforms, the Chebyshev polynomials, the scales each step reads its input
// at and the error model of the result's tracked bound. BootExecutor runs it
// on host ciphertexts or on device-resident ones (over their backend), the
// same sequence of the same operations, so both agree word for word.
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ckks/ciphertext.hpp"
#include "ckks/keys.hpp"
#include "ckks/resident.hpp"
#include "ckks/tables.hpp"
#include "circuits/chebyshev.hpp"
#include "circuits/lintrans.hpp"

namespace ht {

// One order of one context's bootstrap, as planned. Scales are absolute
// (the planner derives them from the chain's primes).
struct BootPlan {
  bool stc_first = true;   // the order
  int stc_levels = 3;      // SlotToCoeff's levels (stc_first: the lowest input level)
  int double_angles = 2;   // r: cos(2a) = 2 cos(a)^2 - 1, r times
  int arcsine_degree = 0;  // 0 (none), 3 or 5: lands EvalMod's output at eval_mod_scale
  bool encapsulation = true;  // ModRaise under the sparse secret (keys made beforehand)
  double input_scale = 0;  // 2 K q0: the scale ModRaise's output is read at
  double headroom = 1;     // 2^h: CoeffToSlot's values stay 2^h above canonical until its last level
  std::vector<std::shared_ptr<const LinearTransform>> cts;  // CoeffToSlot, in order, from the top level
  // SlotToCoeff: from stc_levels down to 0 (stc_first), or from EvalMod's output down (classic).
  std::vector<std::shared_ptr<const LinearTransform>> stc;
  ChebyshevPoly cos_poly;                // cos((2 pi K x - pi / 2) / 2^r) on [-1, 1]
  std::optional<ChebyshevPoly> even_poly;  // stc_first: the same cosine in z = T_2(u), u = (x - c) / span
  double even_shift = 0, even_span = 1;  // c and span
  ChebyshevPoly arcsine, arcsine_half;   // Taylor terms of arcsin (and halved, for packed pairs)
  double eval_mod_scale = 0;   // where the arcsine lands EvalMod's output
  double stc_input_scale = 0;  // classic: the scale SlotToCoeff reads EvalMod's output at
  int output_level = 0;        // stc_first: the output is read at this level's canonical scale
  u64 premultiplier = 1;       // integer pre-multiplier (the message ratio), no level
  double message_ratio = 1;    // q0 / (premultiplier * scale_at(0)): the error model's ratio
  double noise_bound = 0;      // the error per unit of max(|x|, 1) (measured, with a margin)
};

// An upper estimate of a bootstrap's error on values with |x| <= bound: the
// noise (noise_bound per unit of max(bound, 1)) plus the sine's residual bend
// on a coefficient holding the whole message (u = bound / message_ratio):
// (2 pi u)^2 / 6 bare, 3 (2 pi u)^4 / 40 or 5 (2 pi u)^6 / 112 after the
// arcsine of that degree, times 1.5 (higher-order terms).
double boot_error_bound(double bound, double message_ratio, int arcsine_degree, double noise_bound);

// Runs a BootPlan. Inputs: stc_first at level >= stc_levels (brought down to
// it), classic at any level (brought down to 0), at the canonical scale of
// that level; output at the plan's output level, its tracked bound
// bound + boot_error_bound(bound). Thread-safe (the plan is read only).
class BootExecutor {
 public:
  explicit BootExecutor(BootPlan plan);
  const BootPlan& plan() const { return plan_; }

  // One ciphertext batch. `bound`: what |x| is known not to exceed (the
  // smaller of it and ct.bound is used). real_values (stc_first): the slots
  // are real, so one EvalMod instead of two (their imaginary noise dropped).
  Ciphertext bootstrap(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct, double bound,
                       bool real_values) const;
  DeviceCiphertext bootstrap(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct, double bound,
                             bool real_values) const;

  // Two real batches in one complex-packed bootstrap of 2 (Re a + i Re b):
  // returns (a, b) refreshed, each with its own bound. Where the
  // pre-multiplier is odd (the packing's factor 2 cannot come out of it), two
  // single bootstraps.
  std::pair<Ciphertext, Ciphertext> bootstrap_pair(const Tables& ctx, const KeyChain& keys, const Ciphertext& a,
                                                   const Ciphertext& b, double bound_a, double bound_b) const;
  std::pair<DeviceCiphertext, DeviceCiphertext> bootstrap_pair(const Tables& ctx, const KeyChain& keys,
                                                               const DeviceCiphertext& a, const DeviceCiphertext& b,
                                                               double bound_a, double bound_b) const;

  // Real batches paired in order (0 with 1, 2 with 3, ...), the last one
  // alone when their count is odd; results in the input order. One refresh
  // at a time, so memory stays that of one bootstrap.
  std::vector<Ciphertext> bootstrap_many(const Tables& ctx, const KeyChain& keys,
                                         const std::vector<const Ciphertext*>& cts,
                                         const std::vector<double>& bounds) const;
  std::vector<DeviceCiphertext> bootstrap_many(const Tables& ctx, const KeyChain& keys,
                                               const std::vector<const DeviceCiphertext*>& cts,
                                               const std::vector<double>& bounds) const;

  double error_bound(double bound) const;
  // ModRaise-to-EvalMod runs since construction (a pair counts once).
  long refreshes() const { return refreshes_.load(); }

 private:
  template <class Ct> friend struct BootRun;
  BootPlan plan_;
  mutable std::atomic<long> refreshes_{0};
};

}  // namespace ht
