#include "ckks/keyswitch.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "backend/switch_sequence.hpp"
#include "core/error.hpp"
#include "runtime/parallel.hpp"

namespace ht {

namespace {

// Prime index of ext limb e at `level`: Q primes first, then P.
inline int ext_prime(const Tables& ctx, int level, int e) {
  return e <= level ? e : ctx.p_index(e - level - 1);
}

}  // namespace

backend::SwitchKeyRef switch_key(const KeyView& key) {
  return backend::SwitchKeyRef{key.data, key.key->level, key.key->limbs()};
}

void check_key_level(const KeyView& key, int level) {
  if (level > key.key->level)
    throw InvalidArgument("cannot key-switch at level " + std::to_string(level) + ": the key was made for levels <= " +
                          std::to_string(key.key->level) + " (a bootstrapping key trimmed to the levels the bootstrap "
                          "uses); make it again for every level with ctx.generate_rotation_keys([step]) or "
                          "ctx.generate_conjugation_key()");
}

Decomposition decompose(backend::Backend& be, const Tables& ctx, const u64* d_ntt, int level) {
  return backend::decompose(be, ctx.switch_constants(level), d_ntt);
}

void inner_product(backend::Backend& be, const Tables& ctx, const Decomposition& dec, const KeyView& key,
                   const u32* perm, u64* out0, u64* out1) {
  const u64 n = ctx.n();
  const int level = dec.level, el = dec.ext_limbs(), terms = dec.digits;
  check_key_level(key, level);
  if (key.compact && be.device().kind != backend::DeviceKind::cpu)
    fail("key switch", "a compact key must be expanded for a device (KeyChain::device_key does)");
  const backend::SwitchConstants& c = ctx.switch_constants(level);
  // Pointer lists: limb e, digit j at e * terms + j.
  std::vector<const u64*> kb(static_cast<size_t>(el) * terms), ka(kb.size());
  if (!key.compact) {
    backend::key_pointers(c, switch_key(key), kb.data(), ka.data());
    backend::inner_product(be, c, dec, kb.data(), ka.data(), perm, out0, out1);
    return;
  }
  const int L = ctx.max_level();
  std::vector<u64*> o0(el), o1(el);
  std::vector<const u64*> d(kb.size());
  for (int e = 0; e < el; ++e) {
    const size_t key_limb = key.key->limb_of(ext_prime(ctx, level, e), L);
    o0[e] = out0 + static_cast<size_t>(e) * n;
    o1[e] = out1 + static_cast<size_t>(e) * n;
    for (int j = 0; j < terms; ++j) {
      const size_t t = static_cast<size_t>(e) * terms + j;
      d[t] = dec.digit(j, n) + static_cast<size_t>(e) * n;
      kb[t] = key.b(j, key_limb);
    }
  }
  // A compact key's a_j limbs are regenerated on the host a few limbs at a
  // time (they stay in cache for the product) and never stored whole.
  const int chunk = std::max(4, 2 * get_num_threads());
  thread_local std::vector<u64> regenerated;
  regenerated.resize(static_cast<size_t>(chunk) * terms * n);
  u64* const scratch = regenerated.data();  // the caller's: worker threads have their own thread_locals
  for (int e0 = 0; e0 < el; e0 += chunk) {
    const int count = std::min(chunk, el - e0);
    parallel_for(static_cast<size_t>(count) * terms, [&](size_t idx) {
      const int e = e0 + static_cast<int>(idx / terms), j = static_cast<int>(idx % terms);
      u64* a = scratch + idx * n;
      key.key->expand_a(ctx, j, ext_prime(ctx, level, e), a);
      ka[static_cast<size_t>(e) * terms + j] = a;
    });
    const size_t at = static_cast<size_t>(e0) * terms;
    be.key_switch_inner(o0.data() + e0, o1.data() + e0, d.data() + at, kb.data() + at, ka.data() + at, terms, perm,
                        c.moduli.data() + e0, count, n);
  }
}

void mod_down(backend::Backend& be, const Tables& ctx, const u64* ext, int level, u64* out, bool accumulate) {
  backend::mod_down(be, ctx.switch_constants(level), ext, out, accumulate);
}

void mod_down_rescale(backend::Backend& be, const Tables& ctx, const u64* ext, int level, u64* out) {
  backend::mod_down_rescale(be, ctx.switch_constants(level), ext, out);
}

void mul_p_add(backend::Backend& be, const Tables& ctx, const u64* c, int level, u64* ext) {
  backend::mul_p_add(be, ctx.switch_constants(level), c, ext);
}

// Whole switches go through Backend::key_switch (the CPU: the same pieces
// as below; CUDA: the fused passes). A compact key (host only) is read
// through the pieces, which regenerate its a_j.
void relinearize_poly(backend::Backend& be, const Tables& ctx, const KeyView& key, const u64* c0, const u64* c1,
                      const u64* c2, int level, u64* o0, u64* o1) {
  check_key_level(key, level);
  if (!key.compact) {
    const backend::SwitchJob job{c2, {backend::SwitchTarget{switch_key(key), nullptr, 0, c0, c1, o0, o1}}};
    be.key_switch(ctx.switch_constants(level), &job, 1, false);
    return;
  }
  const size_t words = static_cast<size_t>(level + 1) * ctx.n();
  const size_t ext_words = static_cast<size_t>(level + 1 + ctx.alpha()) * ctx.n();
  if (o0 != c0) be.copy(o0, c0, words);
  if (o1 != c1) be.copy(o1, c1, words);
  const Decomposition dec = decompose(be, ctx, c2, level);
  backend::DeviceBuffer e0 = be.allocate(ext_words), e1 = be.allocate(ext_words);
  inner_product(be, ctx, dec, key, nullptr, e0.data(), e1.data());
  mod_down(be, ctx, e0.data(), level, o0, true);
  mod_down(be, ctx, e1.data(), level, o1, true);
}

// (P*c0 + ks0, P*c1 + ks1) is divided by P * q_level in one ModDown, which
// saves the rescale's NTTs.
void relinearize_rescale_poly(backend::Backend& be, const Tables& ctx, const KeyView& key, const u64* c0,
                              const u64* c1, const u64* c2, int level, u64* o0, u64* o1) {
  check_key_level(key, level);
  if (!key.compact) {
    const backend::SwitchJob job{c2, {backend::SwitchTarget{switch_key(key), nullptr, 0, c0, c1, o0, o1}}};
    be.key_switch(ctx.switch_constants(level), &job, 1, true);
    return;
  }
  const size_t ext_words = static_cast<size_t>(level + 1 + ctx.alpha()) * ctx.n();
  backend::DeviceBuffer e0 = be.allocate(ext_words), e1 = be.allocate(ext_words);
  {
    const Decomposition dec = decompose(be, ctx, c2, level);
    inner_product(be, ctx, dec, key, nullptr, e0.data(), e1.data());
  }
  mul_p_add(be, ctx, c0, level, e0.data());
  mul_p_add(be, ctx, c1, level, e1.data());
  mod_down_rescale(be, ctx, e0.data(), level, o0);
  mod_down_rescale(be, ctx, e1.data(), level, o1);
}

static backend::SwitchTarget galois_target(const GaloisTarget& t, const u64* c0) {
  return backend::SwitchTarget{switch_key(t.key), t.perm, t.galois_elt, c0, nullptr, t.o0, t.o1};
}

void galois_hoisted(backend::Backend& be, const Tables& ctx, const u64* c0, const u64* c1, int level,
                    const std::vector<GaloisTarget>& targets) {
  const u64 n = ctx.n();
  bool compact = false;
  for (const GaloisTarget& t : targets) {
    check_key_level(t.key, level);
    compact = compact || t.key.compact;
  }
  if (!compact) {
    backend::SwitchJob job{c1, {}};
    for (const GaloisTarget& t : targets) job.targets.push_back(galois_target(t, c0));
    be.key_switch(ctx.switch_constants(level), &job, 1, false);
    return;
  }
  const size_t ext_words = static_cast<size_t>(level + 1 + ctx.alpha()) * n;
  backend::DeviceBuffer e0 = be.allocate(ext_words), e1 = be.allocate(ext_words);
  const Decomposition dec = decompose(be, ctx, c1, level);
  for (const GaloisTarget& t : targets) {
    be.automorphism(t.o0, c0, t.perm, level + 1, n);
    inner_product(be, ctx, dec, t.key, t.perm, e0.data(), e1.data());
    mod_down(be, ctx, e0.data(), level, t.o0, true);
    mod_down(be, ctx, e1.data(), level, t.o1, false);
  }
}

Decomposition decompose(const Tables& ctx, const u64* d_ntt, int level) {
  return decompose(backend::cpu(), ctx, d_ntt, level);
}
void inner_product(const Tables& ctx, const Decomposition& dec, const SwitchKey& key, const u32* perm, u64* out0,
                   u64* out1) {
  inner_product(backend::cpu(), ctx, dec, host_view(key), perm, out0, out1);
}
void mod_down(const Tables& ctx, const u64* ext, int level, u64* out, bool accumulate) {
  mod_down(backend::cpu(), ctx, ext, level, out, accumulate);
}
void mod_down_rescale(const Tables& ctx, const u64* ext, int level, u64* out) {
  mod_down_rescale(backend::cpu(), ctx, ext, level, out);
}

}  // namespace ht
