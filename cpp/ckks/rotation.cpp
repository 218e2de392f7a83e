// Slot rotations and conjugation: the automorphism permutes c0 directly and
// c1 goes through key switching with the Galois key of sigma(s). Hoisted
// rotations decompose c1 once and apply each automorphism to the
// decomposition (Halevi-Shoup hoisting), saving the ModUp per rotation.
#include <algorithm>
#include <cstring>
#include <set>

#include "ckks/evaluator.hpp"
#include "ckks/keyswitch.hpp"
#include "ckks/rotation.hpp"
#include "core/error.hpp"
#include "core/galois.hpp"
#include "core/naf.hpp"
#include "runtime/parallel.hpp"

namespace ht {

namespace {

bool has_step_key(const KeyChain& keys, long s) {
  const Tables& ctx = keys.tables();
  const long r = normalize_step(s, ctx.slots());
  return r == 0 || keys.has_galois_key(galois_element_for_step(r, ctx.n()));
}

// A step without its own key can be composed from keys for its power-of-two terms.
bool composable(const KeyChain& keys, long s) {
  const std::vector<long> terms = power_of_two_terms(s, static_cast<long>(keys.tables().slots()));
  if (terms.size() < 2) return false;
  for (long t : terms)
    if (!has_step_key(keys, t)) return false;
  return true;
}

}  // namespace

void require_rotation_keys(const KeyChain& keys, const std::vector<long>& steps) {
  const Tables& ctx = keys.tables();
  std::vector<long> missing;
  for (long s : steps) {
    const long r = normalize_step(s, ctx.slots());
    if (r == 0) continue;
    if (!keys.has_galois_key(galois_element_for_step(r, ctx.n())) && !composable(keys, r) &&
        std::find(missing.begin(), missing.end(), s) == missing.end())
      missing.push_back(s);
  }
  if (!missing.empty()) {
    std::string list;
    for (long s : missing) list += (list.empty() ? "" : ", ") + std::to_string(s);
    throw MissingKeyError("no rotation key for step(s) " + list +
                              "; generate them first with ctx.generate_rotation_keys([" + list + "])",
                          missing);
  }
}

namespace {

void check_rotatable(const Tables& ctx, const Ciphertext& a, const char* op) {
  if (a.context_id != ctx.id()) fail(op, "the ciphertext belongs to another context");
  if (a.size != 2) fail(op, "relinearize the ciphertext first (it has " + std::to_string(a.size) + " polynomials)");
}

// Applies the automorphism with Galois key `key` to every ciphertext of a,
// reusing the decomposition of c1 for every element in `elts`.
std::vector<Ciphertext> apply_galois(const Tables& ctx, const KeyChain& keys, const Ciphertext& a,
                                     const std::vector<u64>& elts) {
  std::vector<Ciphertext> outs;
  std::vector<std::shared_ptr<const SwitchKey>> held;  // a wider key may replace one meanwhile
  for (size_t r = 0; r < elts.size(); ++r) {
    outs.emplace_back(ctx.n(), a.batch, 2, a.level, a.scale, ctx.id(), false, false);
    outs.back().bound = a.bound;
    held.push_back(keys.galois_key(elts[r]));
  }
  for (int b = 0; b < a.batch; ++b) {
    std::vector<GaloisTarget> targets;
    for (size_t r = 0; r < elts.size(); ++r)
      targets.push_back(GaloisTarget{host_view(*held[r]), ctx.galois_perm(elts[r]).data(), outs[r].poly(b, 0),
                                     outs[r].poly(b, 1), elts[r]});
    galois_hoisted(backend::cpu(), ctx, a.poly(b, 0), a.poly(b, 1), a.level, targets);
  }
  return outs;
}

}  // namespace

std::vector<std::vector<u64>> plan_rotations(const KeyChain& keys, const std::vector<long>& steps) {
  require_rotation_keys(keys, steps);
  const Tables& ctx = keys.tables();
  std::vector<std::vector<u64>> plan;
  for (long s : steps) {
    std::vector<u64> p;
    if (normalize_step(s, ctx.slots()) != 0) {
      if (has_step_key(keys, s)) p.push_back(galois_element_for_step(s, ctx.n()));
      else
        for (long t : power_of_two_terms(s, static_cast<long>(ctx.slots())))
          p.push_back(galois_element_for_step(t, ctx.n()));
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

u64 conjugation_element(const KeyChain& keys) {
  const u64 g = galois_element_conjugate(keys.tables().n());
  if (!keys.has_galois_key(g))
    throw MissingKeyError("no conjugation key; create the context with conjugation=True or call "
                          "ctx.generate_conjugation_key()",
                          {});
  return g;
}

namespace {
std::vector<Ciphertext> rotations(const Tables& ctx, const KeyChain& keys, const Ciphertext& a,
                                  const std::vector<long>& steps) {
  return run_rotations(
      plan_rotations(keys, steps), a,
      [&](const Ciphertext& x, const std::vector<u64>& elts) { return apply_galois(ctx, keys, x, elts); },
      [](const Ciphertext& x) { return x; });
}
}  // namespace

Ciphertext rotate(const Tables& ctx, const KeyChain& keys, const Ciphertext& a, long step) {
  check_rotatable(ctx, a, "rotate");
  if (normalize_step(step, ctx.slots()) == 0) return a;
  return std::move(rotations(ctx, keys, a, {step})[0]);
}

std::vector<Ciphertext> rotate_hoisted(const Tables& ctx, const KeyChain& keys, const Ciphertext& a,
                                       const std::vector<long>& steps) {
  check_rotatable(ctx, a, "rotate");
  return rotations(ctx, keys, a, steps);
}

Ciphertext conjugate(const Tables& ctx, const KeyChain& keys, const Ciphertext& a) {
  check_rotatable(ctx, a, "conjugate");
  return std::move(apply_galois(ctx, keys, a, {conjugation_element(keys)})[0]);
}

}  // namespace ht
