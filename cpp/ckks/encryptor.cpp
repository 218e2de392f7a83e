#include "ckks/encryptor.hpp"

#include <algorithm>

#include "backend/kernels/elementwise.hpp"
#include "backend/backend.hpp"
#include "core/numth.hpp"
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

namespace {
// [c]_q of a signed coefficient.
inline u64 residue(i64 c, const Modulus& m) {
  const u64 mag = c >= 0 ? static_cast<u64>(c) : static_cast<u64>(-(c + 1)) + 1;
  const u64 r = mag < m.value ? mag : reduce_u64(mag, m);
  return (c >= 0 || r == 0) ? r : m.value - r;
}

// ModDown by the one special prime p of the encryption basis Q_level * p:
// x holds limbs q_0..q_level, then p (NTT domain). Returns, in `out` (level + 1
// limbs, NTT), round((x + small + p * message) / p). The small polynomial and
// the message (signed coefficients; message may be null) join where the data
// is in the coefficient domain anyway, so they need no NTT of their own; the
// rounding is exact (centered residue modulo p).
void mod_down_by_p(const Tables& c, u64* x, int p_index, const std::vector<i64>& small, const i64* message, int level,
                   u64* out) {
  const u64 n = c.n();
  const Modulus& mp = c.modulus(p_index);
  const u64 p = mp.value;
  u64* xp = x + static_cast<size_t>(level + 1) * n;
  backend::ntt_inverse(xp, c.ntt(p_index));
  // The centered residue of x + small modulo p: the part that the division removes.
  std::vector<i64> r(n);
  for (u64 t = 0; t < n; ++t) {
    const u64 v = add_mod(xp[t], residue(small[t], mp), p);
    r[t] = v > p / 2 ? static_cast<i64>(v) - static_cast<i64>(p) : static_cast<i64>(v);
  }
  parallel_for(level + 1, [&](size_t i) {
    const int ii = static_cast<int>(i);
    const Modulus& m = c.modulus(ii);
    const u64 q = m.value;
    const u64 p_mod = reduce_u64(p, m);
    const u64 p_inv = inv_mod(p_mod, q);
    const ShoupConst pm{p_mod, static_cast<u64>((u128(p_mod) << 64) / q)};
    const ShoupConst pinv{p_inv, static_cast<u64>((u128(p_inv) << 64) / q)};
    // x + small + p m - r is divisible by p: (x - NTT(r - small - p m)) / p.
    u64* cv = out + i * n;
    for (u64 t = 0; t < n; ++t) {
      u64 v = sub_mod(residue(r[t], m), residue(small[t], m), q);
      if (message) v = sub_mod(v, mul_shoup(residue(message[t], m), pm, q), q);
      cv[t] = v;
    }
    backend::ntt_forward(cv, c.ntt(ii));
    const u64* xi = x + i * n;
    for (u64 t = 0; t < n; ++t) cv[t] = mul_shoup(sub_mod(xi[t], cv[t], q), pinv, q);
  });
}

// Public-key encryption of `batch` messages at `level`: either a plaintext
// (NTT domain) or rounded coefficients (added inside the ModDown, so the
// message costs no NTT at all).
//   In Q_level * p (p the first special prime): x0 = u*b + e0 + p*m,
//   x1 = u*a + e1, then divide by p with rounding, which leaves rounding
//   noise instead of u*e + e0 + e1*s. The public key restricted to those
//   primes is an RLWE sample modulo a smaller modulus than QP, so no weaker;
//   one special prime (not all of P) suffices for the noise to vanish
//   (|u*e + e0 + e1*s| ~ 2^13 << p) and saves the NTTs of the other primes.
Ciphertext encrypt_public_impl(KeyChain& keys, int batch, int level, double scale, const Plaintext* pt,
                               const std::vector<std::vector<i64>>* coeffs) {
  const Tables& c = keys.tables();
  const u64 n = c.n();
  const int ext_limbs = level + 2;
  Ciphertext ct(n, batch, 2, level, scale, c.id(), false, false);
  std::vector<Prng> streams;
  for (int b = 0; b < batch; ++b) streams.push_back(keys.fork_prng());
  std::vector<int> primes = first_primes(level + 1);
  const int p_index = c.p_index(0);
  primes.push_back(p_index);
  const size_t words = static_cast<size_t>(ext_limbs) * n;
  Buffer u(words, true), x0 = Buffer::uninitialized(words), x1 = Buffer::uninitialized(words);
  for (int b = 0; b < batch; ++b) {
    std::fill(u.data(), u.data() + words, 0);
    add_small_poly_ntt(c, sample_ternary(streams[b], n), u.data(), primes);
    const std::vector<i64> e0 = sample_gaussian(streams[b], n, c.params().sigma());
    const std::vector<i64> e1 = sample_gaussian(streams[b], n, c.params().sigma());
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
        kernels::mul_limb(o0, ui, pb, m, k);
        kernels::mul_limb(o1, ui, pa, m, k);
      }
      if (pt && static_cast<int>(e) <= level) {
        const u64 p_mod = reduce_u64(c.prime(p_index), m);
        const ShoupConst pm{p_mod, static_cast<u64>((u128(p_mod) << 64) / m.value)};
        const u64* mi = pt->limb(b, 0, prime);
        for (u64 k = 0; k < n; ++k) o0[k] = add_mod(o0[k], mul_shoup(mi[k], pm, m.value), m.value);
      }
    });
    mod_down_by_p(c, x0.data(), p_index, e0, coeffs ? (*coeffs)[b].data() : nullptr, level, ct.poly(b, 0));
    mod_down_by_p(c, x1.data(), p_index, e1, nullptr, level, ct.poly(b, 1));
  }
  return ct;
}
}  // namespace

Ciphertext encrypt_public(KeyChain& keys, const Plaintext& pt) {
  check_plaintext(keys, pt, "encrypt");
  return encrypt_public_impl(keys, pt.batch, pt.level, pt.scale, &pt, nullptr);
}

Ciphertext encrypt_public_coefficients(KeyChain& keys, const std::vector<std::vector<i64>>& coeffs, int level,
                                       double scale) {
  const Tables& c = keys.tables();
  if (level < 0 || level > c.max_level()) fail("encrypt", "level " + std::to_string(level) + " is not in the chain");
  for (const auto& row : coeffs)
    if (row.size() != c.n()) fail("encrypt", "each message needs N coefficients");
  return encrypt_public_impl(keys, static_cast<int>(coeffs.size()), level, scale, nullptr, &coeffs);
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
