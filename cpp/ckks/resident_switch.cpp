// Key switching on device-resident ciphertexts: relinearization (with the
// fused rescale of multiply), rotations (hoisted and composed) and
// conjugation. A batch of ciphertexts (and all the rotations of a hoisted
// call) is one Backend::key_switch call, with the keys where the backend
// reads them (KeyChain::device_key); the CPU backend runs it as the host
// evaluator's sequence, so the results are the host's bit for bit.
#include <cmath>
#include <memory>
#include <vector>

#include "ckks/evaluator.hpp"
#include "ckks/keyswitch.hpp"
#include "ckks/resident.hpp"
#include "ckks/resident_detail.hpp"
#include "ckks/rotation.hpp"
#include "core/galois.hpp"

namespace ht::resident {

using detail::check_ct;
using detail::check_pair;
using detail::empty_like;
using detail::finish;

namespace {

void check_rotatable(const Tables& ctx, const DeviceCiphertext& a, const char* op) {
  check_ct(ctx, a, op);
  if (a.size != 2) fail(op, "relinearize the ciphertext first (it has " + std::to_string(a.size) + " polynomials)");
}

// Every ciphertext of a batch is one job of one Backend::key_switch call, so
// a device runs the whole batch (and all of its rotations) in one set of
// passes. A compact key (host memory only) goes ciphertext by ciphertext.
std::vector<DeviceCiphertext> apply_galois(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a,
                                           const std::vector<u64>& elts) {
  backend::Backend& be = a.backend();
  std::vector<DeviceCiphertext> outs;
  std::vector<std::shared_ptr<const SwitchKey>> held;  // a wider key may replace one meanwhile
  std::vector<KeyView> views;
  bool compact = false;
  for (u64 g : elts) {
    outs.push_back(empty_like<DeviceCiphertext>(be, ctx.n(), a.batch, 2, a.level, a.scale, ctx.id()));
    outs.back().bound = a.bound;
    held.push_back(keys.galois_key(g));
    views.push_back(keys.device_key(held.back(), be));
    check_key_level(views.back(), a.level);
    compact = compact || views.back().compact;
  }
  if (!compact) {
    std::vector<backend::SwitchJob> jobs(a.batch);
    for (int b = 0; b < a.batch; ++b) {
      jobs[b].d = a.poly(b, 1);
      for (size_t r = 0; r < elts.size(); ++r)
        jobs[b].targets.push_back(backend::SwitchTarget{switch_key(views[r]), ctx.galois_perm(elts[r]).data(),
                                                        elts[r], a.poly(b, 0), nullptr, outs[r].poly(b, 0),
                                                        outs[r].poly(b, 1)});
    }
    be.key_switch(ctx.switch_constants(a.level), jobs.data(), jobs.size(), false);
    return outs;
  }
  for (int b = 0; b < a.batch; ++b) {
    std::vector<GaloisTarget> targets;
    for (size_t r = 0; r < elts.size(); ++r)
      targets.push_back(GaloisTarget{views[r], ctx.galois_perm(elts[r]).data(), outs[r].poly(b, 0),
                                     outs[r].poly(b, 1), elts[r]});
    galois_hoisted(be, ctx, a.poly(b, 0), a.poly(b, 1), a.level, targets);
  }
  return outs;
}

// Relinearization of every ciphertext of `a` into `out` (rescaling: out one level down).
void relinearize_batch(const Tables& ctx, const KeyView& key, const DeviceCiphertext& a, DeviceCiphertext& out,
                       bool rescale) {
  backend::Backend& be = a.backend();
  check_key_level(key, a.level);
  if (key.compact) {
    for (int b = 0; b < a.batch; ++b) {
      if (rescale)
        relinearize_rescale_poly(be, ctx, key, a.poly(b, 0), a.poly(b, 1), a.poly(b, 2), a.level, out.poly(b, 0),
                                 out.poly(b, 1));
      else
        relinearize_poly(be, ctx, key, a.poly(b, 0), a.poly(b, 1), a.poly(b, 2), a.level, out.poly(b, 0),
                         out.poly(b, 1));
    }
    return;
  }
  std::vector<backend::SwitchJob> jobs(a.batch);
  for (int b = 0; b < a.batch; ++b) {
    jobs[b].d = a.poly(b, 2);
    jobs[b].targets.push_back(backend::SwitchTarget{switch_key(key), nullptr, 0, a.poly(b, 0), a.poly(b, 1),
                                                    out.poly(b, 0), out.poly(b, 1)});
  }
  be.key_switch(ctx.switch_constants(a.level), jobs.data(), jobs.size(), rescale);
}

std::vector<DeviceCiphertext> rotations(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a,
                                        const std::vector<long>& steps) {
  return run_rotations(
      plan_rotations(keys, steps), a,
      [&](const DeviceCiphertext& x, const std::vector<u64>& elts) { return apply_galois(ctx, keys, x, elts); },
      [](const DeviceCiphertext& x) { return copy(x); });
}

void check_keys(const Tables& ctx, const KeyChain& keys, const char* op) {
  if (&keys.tables() != &ctx) fail(op, "the keys belong to another context");
}

}  // namespace

DeviceCiphertext relinearize(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a) {
  check_ct(ctx, a, "relinearize");
  check_keys(ctx, keys, "relinearize");
  if (a.size == 2) return copy(a);
  backend::Backend& be = a.backend();
  auto out = empty_like<DeviceCiphertext>(be, ctx.n(), a.batch, 2, a.level, a.scale, ctx.id());
  const auto held = keys.relin_key_ptr();
  const KeyView key = keys.device_key(held, be);
  relinearize_batch(ctx, key, a, out, false);
  out.bound = a.bound;
  return out;
}

// Relinearization and rescale in one ModDown: size 3 at level l -> size 2 at l - 1.
DeviceCiphertext relinearize_rescale(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a) {
  check_ct(ctx, a, "relinearize");
  check_keys(ctx, keys, "relinearize");
  if (a.size != 3) fail("relinearize", "relinearize_rescale takes a size-3 ciphertext");
  if (a.level < 1) fail("relinearize", "the ciphertext is at level 0; no prime is left to divide by");
  backend::Backend& be = a.backend();
  const int level = a.level;
  auto out = empty_like<DeviceCiphertext>(be, ctx.n(), a.batch, 2, level - 1,
                                          a.scale / static_cast<double>(ctx.prime(level)), ctx.id());
  const auto held = keys.relin_key_ptr();
  const KeyView key = keys.device_key(held, be);
  relinearize_batch(ctx, key, a, out, true);
  out.bound = a.bound;
  return out;
}

DeviceCiphertext multiply(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a,
                          const DeviceCiphertext& b) {
  check_pair(ctx, a, b, "multiply");
  check_keys(ctx, keys, "multiply");
  if (std::min(a.level, b.level) < 1)
    fail("multiply", "an operand is at level 0 and no level is left to rescale the product; use a preset with "
                     "more levels (Context.max_level)");
  DeviceCiphertext out = relinearize_rescale(ctx, keys, multiply_no_relin(ctx, a, b));
  if (std::fabs(out.scale / ctx.scale_at(out.level) - 1) < 1e-6) out.scale = ctx.scale_at(out.level);
  return finish(ctx, std::move(out), a.bound * b.bound, "multiply");
}

DeviceCiphertext square(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a) {
  return multiply(ctx, keys, a, a);
}

DeviceCiphertext rotate(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a, long step) {
  check_rotatable(ctx, a, "rotate");
  check_keys(ctx, keys, "rotate");
  if (normalize_step(step, ctx.slots()) == 0) return copy(a);
  return std::move(rotations(ctx, keys, a, {step})[0]);
}

std::vector<DeviceCiphertext> rotate_hoisted(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a,
                                             const std::vector<long>& steps) {
  check_rotatable(ctx, a, "rotate");
  check_keys(ctx, keys, "rotate");
  return rotations(ctx, keys, a, steps);
}

DeviceCiphertext conjugate(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a) {
  check_rotatable(ctx, a, "conjugate");
  check_keys(ctx, keys, "conjugate");
  return std::move(apply_galois(ctx, keys, a, {conjugation_element(keys)})[0]);
}

}  // namespace ht::resident
