// Slot rotations and conjugation: the automorphism permutes c0 directly and
// c1 goes through key switching with the Galois key of sigma(s). Hoisted
// rotations decompose c1 once and apply each automorphism to the
// decomposition (Halevi-Shoup hoisting), saving the ModUp per rotation.
#include <algorithm>
#include <cstring>
#include <set>

#include "ckks/evaluator.hpp"
#include "ckks/keyswitch.hpp"
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
  const u64 n = ctx.n();
  const int level = a.level;
  std::vector<Ciphertext> outs;
  for (size_t r = 0; r < elts.size(); ++r) {
    outs.emplace_back(n, a.batch, 2, level, a.scale, ctx.id(), false, false);
    outs.back().bound = a.bound;
  }
  const size_t ext_words = static_cast<size_t>(level + 1 + ctx.alpha()) * n;
  Buffer e0 = Buffer::uninitialized(ext_words), e1 = Buffer::uninitialized(ext_words);
  for (int b = 0; b < a.batch; ++b) {
    const Decomposition dec = decompose(ctx, a.poly(b, 1), level);
    for (size_t r = 0; r < elts.size(); ++r) {
      const std::vector<u32>& perm = ctx.galois_perm(elts[r]);
      Ciphertext& out = outs[r];
      const u64* c0 = a.poly(b, 0);
      u64* o0 = out.poly(b, 0);
      parallel_for(a.limbs(), [&](size_t i) {
        for (u64 k = 0; k < n; ++k) o0[i * n + k] = c0[i * n + perm[k]];
      });
      inner_product(ctx, dec, *keys.galois_key(elts[r]), perm.data(), e0.data(), e1.data());
      mod_down(ctx, e0.data(), level, o0, true);
      mod_down(ctx, e1.data(), level, out.poly(b, 1), false);
    }
  }
  return outs;
}

}  // namespace

Ciphertext rotate(const Tables& ctx, const KeyChain& keys, const Ciphertext& a, long step) {
  check_rotatable(ctx, a, "rotate");
  if (normalize_step(step, ctx.slots()) == 0) return a;
  require_rotation_keys(keys, {step});
  if (!has_step_key(keys, step)) {  // composed from power-of-two keys
    Ciphertext out = a;
    for (long t : power_of_two_terms(step, static_cast<long>(ctx.slots())))
      out = std::move(apply_galois(ctx, keys, out, {galois_element_for_step(t, ctx.n())})[0]);
    return out;
  }
  return std::move(apply_galois(ctx, keys, a, {galois_element_for_step(step, ctx.n())})[0]);
}

std::vector<Ciphertext> rotate_hoisted(const Tables& ctx, const KeyChain& keys, const Ciphertext& a,
                                       const std::vector<long>& steps) {
  check_rotatable(ctx, a, "rotate");
  require_rotation_keys(keys, steps);
  std::vector<u64> elts;
  std::vector<int> which(steps.size(), -1);  // index into elts, -1 for a rotation by 0
  std::vector<Ciphertext> composed(steps.size());
  for (size_t s = 0; s < steps.size(); ++s) {
    if (normalize_step(steps[s], ctx.slots()) == 0) continue;
    if (!has_step_key(keys, steps[s])) {  // no hoisting for a composed rotation
      composed[s] = rotate(ctx, keys, a, steps[s]);
      which[s] = -2;
      continue;
    }
    const u64 g = galois_element_for_step(steps[s], ctx.n());
    auto it = std::find(elts.begin(), elts.end(), g);
    which[s] = static_cast<int>(it - elts.begin());
    if (it == elts.end()) elts.push_back(g);
  }
  std::vector<Ciphertext> rotated = elts.empty() ? std::vector<Ciphertext>{} : apply_galois(ctx, keys, a, elts);
  std::vector<Ciphertext> out;
  for (size_t s = 0; s < steps.size(); ++s)
    out.push_back(which[s] == -2 ? std::move(composed[s]) : which[s] < 0 ? a : rotated[which[s]]);
  return out;
}

Ciphertext conjugate(const Tables& ctx, const KeyChain& keys, const Ciphertext& a) {
  check_rotatable(ctx, a, "conjugate");
  const u64 g = galois_element_conjugate(ctx.n());
  if (!keys.has_galois_key(g))
    throw MissingKeyError("no conjugation key; create the context with conjugation=True or call "
                          "ctx.generate_conjugation_key()",
                          {});
  return std::move(apply_galois(ctx, keys, a, {g})[0]);
}

}  // namespace ht
