#include "ckks/keyswitch.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "runtime/parallel.hpp"

namespace ht {

namespace {

// Prime index of ext limb e at `level`: Q primes first, then P.
inline int ext_prime(const Tables& ctx, int level, int e) {
  return e <= level ? e : ctx.p_index(e - level - 1);
}

// Limbs base, base + n, ... with the NTT tables of the primes prime_of(0..count-1).
template <class PrimeOf>
void ntt_limbs(backend::Backend& be, const Tables& ctx, u64* base, std::size_t count, u64 n, bool inverse,
               PrimeOf prime_of) {
  std::vector<u64*> limbs(count);
  std::vector<const NttTables*> tables(count);
  for (std::size_t i = 0; i < count; ++i) {
    limbs[i] = base + i * n;
    tables[i] = &ctx.ntt(prime_of(static_cast<int>(i)));
  }
  if (inverse) be.ntt_inverse(limbs.data(), tables.data(), count);
  else be.ntt_forward(limbs.data(), tables.data(), count);
}

void check_key_level(const KeyView& key, int level) {
  if (level > key.key->level)
    throw InvalidArgument("cannot key-switch at level " + std::to_string(level) + ": the key was made for levels <= " +
                          std::to_string(key.key->level) + " (a bootstrapping key trimmed to the levels the bootstrap "
                          "uses); make it again for every level with ctx.generate_rotation_keys([step]) or "
                          "ctx.generate_conjugation_key()");
}

}  // namespace

Decomposition decompose(backend::Backend& be, const Tables& ctx, const u64* d_ntt, int level) {
  const u64 n = ctx.n();
  const int alpha = ctx.alpha();
  Decomposition dec;
  dec.level = level;
  dec.alpha = alpha;
  dec.digits = ctx.num_digits(level);
  const int el = dec.ext_limbs();
  dec.ext = be.allocate(static_cast<size_t>(dec.digits) * el * n);

  backend::DeviceBuffer coef = be.allocate(static_cast<size_t>(level + 1) * n);
  be.copy(coef.data(), d_ntt, coef.size());
  ntt_limbs(be, ctx, coef.data(), level + 1, n, true, [](int i) { return i; });

  for (int j = 0; j < dec.digits; ++j) {
    u64* ext = dec.ext.data() + static_cast<size_t>(j) * el * n;
    const int db = ctx.digit_begin(j), de = ctx.digit_end(j, level);
    std::vector<const u64*> src;
    std::vector<u64*> dst;
    std::vector<const NttTables*> tables;
    for (int i = db; i < de; ++i) src.push_back(coef.data() + static_cast<size_t>(i) * n);
    // The digit's own limbs are its NTT values as they are.
    be.copy(ext + static_cast<size_t>(db) * n, d_ntt + static_cast<size_t>(db) * n, static_cast<size_t>(de - db) * n);
    for (int e = 0; e < el; ++e) {
      if (e >= db && e < de) continue;
      dst.push_back(ext + static_cast<size_t>(e) * n);
      tables.push_back(&ctx.ntt(ext_prime(ctx, level, e)));
    }
    // Centered digits: with [0, D) representatives the mean D/2 of every
    // coefficient times the key's error is a fixed, data-independent error.
    be.basis_convert(ctx.modup(level, j).view(), src.data(), dst.data(), n, true);
    be.ntt_forward(dst.data(), tables.data(), dst.size());
  }
  return dec;
}

void inner_product(backend::Backend& be, const Tables& ctx, const Decomposition& dec, const KeyView& key,
                   const u32* perm, u64* out0, u64* out1) {
  const u64 n = ctx.n();
  const int L = ctx.max_level(), level = dec.level, el = dec.ext_limbs(), terms = dec.digits;
  check_key_level(key, level);
  if (key.compact && be.device().kind != backend::DeviceKind::cpu)
    fail("key switch", "a compact key must be expanded for a device (KeyChain::device_key does)");
  // Pointer lists: limb e, digit j at e * terms + j.
  std::vector<u64*> o0(el), o1(el);
  std::vector<const u64*> d(static_cast<size_t>(el) * terms), kb(d.size()), ka(d.size());
  std::vector<Modulus> moduli(el);
  for (int e = 0; e < el; ++e) {
    const int pi = ext_prime(ctx, level, e);
    const size_t key_limb = key.key->limb_of(pi, L);
    o0[e] = out0 + static_cast<size_t>(e) * n;
    o1[e] = out1 + static_cast<size_t>(e) * n;
    moduli[e] = ctx.modulus(pi);
    for (int j = 0; j < terms; ++j) {
      const size_t t = static_cast<size_t>(e) * terms + j;
      d[t] = dec.digit(j, n) + static_cast<size_t>(e) * n;
      kb[t] = key.b(j, key_limb);
      ka[t] = key.compact ? nullptr : key.a(j, key_limb);
    }
  }
  if (!key.compact) {
    be.key_switch_inner(o0.data(), o1.data(), d.data(), kb.data(), ka.data(), terms, perm, moduli.data(), el, n);
    return;
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
                        moduli.data() + e0, count, n);
  }
}

void mod_down(backend::Backend& be, const Tables& ctx, const u64* ext, int level, u64* out, bool accumulate) {
  const u64 n = ctx.n();
  const int alpha = ctx.alpha();
  // The P part to the coefficient domain.
  backend::DeviceBuffer pcoef = be.allocate(static_cast<size_t>(alpha) * n);
  be.copy(pcoef.data(), ext + static_cast<size_t>(level + 1) * n, pcoef.size());
  ntt_limbs(be, ctx, pcoef.data(), alpha, n, true, [&](int k) { return ctx.p_index(k); });
  // Convert to Q_level; then, limb by limb, back to NTT and (x - conv) * P^-1.
  backend::DeviceBuffer conv = be.allocate(static_cast<size_t>(level + 1) * n);
  std::vector<const u64*> src, x;
  std::vector<u64*> dst, o;
  std::vector<const NttTables*> tables;
  std::vector<ShoupConst> pinv;
  for (int k = 0; k < alpha; ++k) src.push_back(pcoef.data() + static_cast<size_t>(k) * n);
  for (int i = 0; i <= level; ++i) {
    dst.push_back(conv.data() + static_cast<size_t>(i) * n);
    x.push_back(ext + static_cast<size_t>(i) * n);
    o.push_back(out + static_cast<size_t>(i) * n);
    tables.push_back(&ctx.ntt(i));
    pinv.push_back(ctx.p_inv(i));
  }
  be.basis_convert(ctx.moddown(level).view(), src.data(), dst.data(), n, true);
  be.ntt_sub_mul_const(o.data(), x.data(), dst.data(), pinv.data(), tables.data(), level + 1, n, accumulate);
}

void mod_down_rescale(backend::Backend& be, const Tables& ctx, const u64* ext, int level, u64* out) {
  const u64 n = ctx.n();
  const int alpha = ctx.alpha();
  // q_level and P limbs are contiguous in ext: limbs level .. level + alpha.
  backend::DeviceBuffer src = be.allocate(static_cast<size_t>(alpha + 1) * n);
  be.copy(src.data(), ext + static_cast<size_t>(level) * n, src.size());
  ntt_limbs(be, ctx, src.data(), alpha + 1, n, true, [&](int k) { return k == 0 ? level : ctx.p_index(k - 1); });
  backend::DeviceBuffer conv = be.allocate(static_cast<size_t>(level) * n);
  std::vector<const u64*> s, x;
  std::vector<u64*> d, o;
  std::vector<const NttTables*> tables;
  std::vector<ShoupConst> inv;
  for (int k = 0; k <= alpha; ++k) s.push_back(src.data() + static_cast<size_t>(k) * n);
  for (int i = 0; i < level; ++i) {
    d.push_back(conv.data() + static_cast<size_t>(i) * n);
    x.push_back(ext + static_cast<size_t>(i) * n);
    o.push_back(out + static_cast<size_t>(i) * n);
    tables.push_back(&ctx.ntt(i));
    inv.push_back(ctx.pq_inv(level, i));
  }
  be.basis_convert(ctx.moddown_rescale(level).view(), s.data(), d.data(), n, true);
  be.ntt_sub_mul_const(o.data(), x.data(), d.data(), inv.data(), tables.data(), level, n, false);
}

void mul_p_add(backend::Backend& be, const Tables& ctx, const u64* c, int level, u64* ext) {
  const u64 n = ctx.n();
  std::vector<u64*> o(level + 1);
  std::vector<const u64*> a(level + 1);
  std::vector<ShoupConst> w(level + 1);
  std::vector<u64> q(level + 1);
  for (int i = 0; i <= level; ++i) {
    o[i] = ext + static_cast<size_t>(i) * n;
    a[i] = c + static_cast<size_t>(i) * n;
    w[i] = ctx.p_mod(i);
    q[i] = ctx.prime(i);
  }
  be.mul_const_add(o.data(), a.data(), w.data(), q.data(), level + 1, n);
}

void relinearize_poly(backend::Backend& be, const Tables& ctx, const KeyView& key, const u64* c0, const u64* c1,
                      const u64* c2, int level, u64* o0, u64* o1) {
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

void galois_hoisted(backend::Backend& be, const Tables& ctx, const u64* c0, const u64* c1, int level,
                    const std::vector<GaloisTarget>& targets) {
  const u64 n = ctx.n();
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
