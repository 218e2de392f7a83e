// How slot rotations run, whatever memory the ciphertexts live in: a plan of
// Galois elements per step (checked against the chain's keys) and a runner
// that hoists every step with its own key over one decomposition and applies
// composed steps (power-of-two keys) one element after another. The host
// evaluator (rotation.cpp) and the resident one (resident_switch.cpp) both
// run their rotations through it, with their own apply_galois.
#pragma once
#include <algorithm>
#include <utility>
#include <vector>

#include "ckks/keys.hpp"

namespace ht {

// Per step: no element (a rotation by 0), the step's own element, or the
// elements of its power-of-two terms in order. Throws MissingKeyError.
std::vector<std::vector<u64>> plan_rotations(const KeyChain& keys, const std::vector<long>& steps);
// The conjugation element; throws MissingKeyError without its key.
u64 conjugation_element(const KeyChain& keys);

// apply(ct, elts) -> std::vector<Ct>: every element of elts applied to ct
// over one decomposition. copy(ct) -> Ct.
template <class Ct, class Apply, class Copy>
std::vector<Ct> run_rotations(const std::vector<std::vector<u64>>& plan, const Ct& a, Apply&& apply, Copy&& copy) {
  std::vector<u64> hoisted;
  for (const auto& p : plan)
    if (p.size() == 1 && std::find(hoisted.begin(), hoisted.end(), p[0]) == hoisted.end()) hoisted.push_back(p[0]);
  std::vector<Ct> rotated = hoisted.empty() ? std::vector<Ct>{} : apply(a, hoisted);
  std::vector<int> uses(rotated.size(), 0);  // a repeated step copies; its last use takes the result
  for (const auto& p : plan)
    if (p.size() == 1) ++uses[std::find(hoisted.begin(), hoisted.end(), p[0]) - hoisted.begin()];
  std::vector<Ct> out;
  out.reserve(plan.size());
  for (const auto& p : plan) {
    if (p.empty()) {
      out.push_back(copy(a));
    } else if (p.size() == 1) {
      const size_t r = static_cast<size_t>(std::find(hoisted.begin(), hoisted.end(), p[0]) - hoisted.begin());
      out.push_back(--uses[r] == 0 ? std::move(rotated[r]) : copy(rotated[r]));
    } else {  // no hoisting for a composed rotation
      Ct x = std::move(apply(a, {p[0]})[0]);
      for (size_t t = 1; t < p.size(); ++t) x = std::move(apply(x, {p[t]})[0]);
      out.push_back(std::move(x));
    }
  }
  return out;
}

}  // namespace ht
