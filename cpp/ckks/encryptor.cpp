#include "ckks/encryptor.hpp"

#include <algorithm>

#include "backend/kernels/elementwise.hpp"
#include "ckks/keyswitch.hpp"
#include "core/error.hpp"
#include "core/sampling.hpp"
#include "runtime/parallel.hpp"

namespace ht {

namespace {
std::vector<int> first_primes(int count) {
  std::vector<int> r(count);
  for (int i = 0; i < count; ++i) r[i] = i;
  return r;
}
void check_plaintext(const KeyChain& keys, const Plaintext& pt, const char* op) {
  if (pt.context_id != keys.tables().id()) fail(op, "the plaintext belongs to another context");
}
}  // namespace

Ciphertext encrypt_public(KeyChain& keys, const Plaintext& pt) {
  check_plaintext(keys, pt, "encrypt");
  const Tables& c = keys.tables();
  const u64 n = c.n();
  const int level = pt.level, alpha = c.alpha();
  const int ext_limbs = level + 1 + alpha;
  Ciphertext ct(n, pt.batch, 2, pt.level, pt.scale, c.id(), false, false);
  std::vector<Prng> streams;
  for (int b = 0; b < pt.batch; ++b) streams.push_back(keys.fork_prng());
  // Primes of Q_level followed by P, the layout mod_down expects.
  std::vector<int> primes = first_primes(level + 1);
  for (int k = 0; k < alpha; ++k) primes.push_back(c.p_index(k));
  const size_t words = static_cast<size_t>(ext_limbs) * n;
  Buffer u(words, true), x0(words), x1(words);
  for (int b = 0; b < pt.batch; ++b) {
    // In QP: x0 = u*b + e0 + P*m, x1 = u*a + e1; then divide by P (Lattigo's
    // approach), which leaves rounding noise instead of u*e + e1*s.
    std::fill(u.data(), u.data() + words, 0);
    std::fill(x0.data(), x0.data() + words, 0);
    std::fill(x1.data(), x1.data() + words, 0);
    add_small_poly_ntt(c, sample_ternary(streams[b], n), u.data(), primes);
    add_small_poly_ntt(c, sample_gaussian(streams[b], n, c.params().sigma()), x0.data(), primes);
    add_small_poly_ntt(c, sample_gaussian(streams[b], n, c.params().sigma()), x1.data(), primes);
    parallel_for(ext_limbs, [&](size_t e) {
      const int prime = primes[e];
      const Modulus& m = c.modulus(prime);
      const size_t key_limb = static_cast<size_t>(prime);  // key limbs are indexed by prime
      const u64* ui = u.data() + e * n;
      const u64* pb = keys.public_key().b.data() + key_limb * n;
      const u64* pa = keys.public_key().a.data() + key_limb * n;
      u64* o0 = x0.data() + e * n;
      u64* o1 = x1.data() + e * n;
      for (u64 k = 0; k < n; ++k) {
        kernels::mul_add_limb(o0, ui, pb, m, k);
        kernels::mul_add_limb(o1, ui, pa, m, k);
      }
      if (static_cast<int>(e) <= level) {
        const ShoupConst pm = c.p_mod(prime);
        const u64* mi = pt.limb(b, 0, prime);
        for (u64 k = 0; k < n; ++k) o0[k] = add_mod(o0[k], mul_shoup(mi[k], pm, m.value), m.value);
      }
    });
    mod_down(c, x0.data(), level, ct.poly(b, 0), false);
    mod_down(c, x1.data(), level, ct.poly(b, 1), false);
  }
  return ct;
}

Ciphertext encrypt_symmetric(KeyChain& keys, const Plaintext& pt) {
  check_plaintext(keys, pt, "encrypt");
  const Tables& c = keys.tables();
  const u64 n = c.n();
  const int limbs = pt.limbs();
  Ciphertext ct(n, pt.batch, 2, pt.level, pt.scale, c.id());
  const auto primes = first_primes(limbs);
  const SecretKey& sk = keys.secret();
  ct.a_seeds.resize(pt.batch);
  for (int b = 0; b < pt.batch; ++b) {
    Prng prng = keys.fork_prng();
    ct.a_seeds[b] = prng.next_key();
    expand_uniform(c, ct.a_seeds[b], ct.poly(b, 1), primes);
    add_small_poly_ntt(c, sample_gaussian(prng, n, c.params().sigma()), ct.poly(b, 0), primes);
    parallel_for(limbs, [&](size_t i) {
      const Modulus& m = c.modulus(static_cast<int>(i));
      const u64* s = sk.s.data() + i * n;
      const u64* mi = pt.limb(b, 0, static_cast<int>(i));
      const u64* a = ct.limb(b, 1, static_cast<int>(i));
      u64* c0 = ct.limb(b, 0, static_cast<int>(i));
      for (u64 k = 0; k < n; ++k) {
        c0[k] = sub_mod(add_mod(c0[k], mi[k], m.value), mul_mod(a[k], s[k], m), m.value);
      }
    });
  }
  return ct;
}

Buffer decrypt_message(const KeyChain& keys, const Ciphertext& ct, int& limbs) {
  const Tables& c = keys.tables();
  if (ct.context_id != c.id()) fail("decrypt", "the ciphertext belongs to another context");
  const u64 n = c.n();
  const SecretKey& sk = keys.secret();
  limbs = std::min(3, ct.limbs());
  Buffer m(static_cast<size_t>(ct.batch) * limbs * n, true);
  parallel_for(static_cast<size_t>(ct.batch) * limbs, [&](size_t idx) {
    const int b = static_cast<int>(idx / limbs), i = static_cast<int>(idx % limbs);
    const Modulus& mod = c.modulus(i);
    const u64* s = sk.s.data() + static_cast<size_t>(i) * n;
    u64* out = m.data() + idx * n;
    const u64* c0 = ct.limb(b, 0, i);
    const u64* c1 = ct.limb(b, 1, i);
    for (u64 k = 0; k < n; ++k) {
      u64 v = add_mod(c0[k], mul_mod(c1[k], s[k], mod), mod.value);
      if (ct.size == 3) {
        const u64 s2 = mul_mod(s[k], s[k], mod);
        v = add_mod(v, mul_mod(ct.limb(b, 2, i)[k], s2, mod), mod.value);
      }
      out[k] = v;
    }
  });
  return m;
}

}  // namespace ht
