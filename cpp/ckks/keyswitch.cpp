#include "ckks/keyswitch.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/backend.hpp"
#include "backend/kernels/basis.hpp"
#include "backend/kernels/elementwise.hpp"
#include "core/error.hpp"
#include "runtime/parallel.hpp"

namespace ht {

namespace {
// Prime index of ext limb e at `level`: Q primes first, then P.
inline int ext_prime(const Tables& ctx, int level, int e) {
  return e <= level ? e : ctx.p_index(e - level - 1);
}
// The backend every step runs on (the seam where a context's device plugs in).
backend::Backend& be() { return backend::cpu(); }

void convert(const BasisConverter& conv, const std::vector<const u64*>& src, const std::vector<u64*>& dst, u64 n,
             bool exact) {
  be().basis_convert(conv.view(), src.data(), dst.data(), n, exact);
}

// Limbs base, base + n, ... with the NTT tables of the primes prime_of(0..count-1).
template <class PrimeOf>
void ntt_limbs(const Tables& ctx, u64* base, std::size_t count, u64 n, bool inverse, PrimeOf prime_of) {
  std::vector<u64*> limbs(count);
  std::vector<const NttTables*> tables(count);
  for (std::size_t i = 0; i < count; ++i) {
    limbs[i] = base + i * n;
    tables[i] = &ctx.ntt(prime_of(static_cast<int>(i)));
  }
  if (inverse) be().ntt_inverse(limbs.data(), tables.data(), count);
  else be().ntt_forward(limbs.data(), tables.data(), count);
}
}  // namespace

Decomposition decompose(const Tables& ctx, const u64* d_ntt, int level) {
  const u64 n = ctx.n();
  const int alpha = ctx.alpha();
  Decomposition dec;
  dec.level = level;
  dec.alpha = alpha;
  dec.digits = ctx.num_digits(level);
  const int el = dec.ext_limbs();
  dec.ext = Buffer::uninitialized(static_cast<size_t>(dec.digits) * el * n);

  Buffer coef = Buffer::uninitialized(static_cast<size_t>(level + 1) * n);
  std::memcpy(coef.data(), d_ntt, coef.bytes());
  ntt_limbs(ctx, coef.data(), level + 1, n, true, [](int i) { return i; });

  for (int j = 0; j < dec.digits; ++j) {
    u64* ext = dec.ext.data() + static_cast<size_t>(j) * el * n;
    const int db = ctx.digit_begin(j), de = ctx.digit_end(j, level);
    std::vector<const u64*> src;
    std::vector<u64*> dst;
    std::vector<int> dst_limb;
    for (int i = db; i < de; ++i) src.push_back(coef.data() + static_cast<size_t>(i) * n);
    for (int e = 0; e < el; ++e) {
      if (e >= db && e < de) {
        std::memcpy(ext + static_cast<size_t>(e) * n, d_ntt + static_cast<size_t>(e) * n, n * sizeof(u64));
      } else {
        dst.push_back(ext + static_cast<size_t>(e) * n);
        dst_limb.push_back(e);
      }
    }
    // Centered digits: with [0, D) representatives the mean D/2 of every
    // coefficient times the key's error is a fixed, data-independent error.
    convert(ctx.modup(level, j), src, dst, n, true);
    std::vector<const NttTables*> tables(dst.size());
    for (size_t t = 0; t < dst.size(); ++t) tables[t] = &ctx.ntt(ext_prime(ctx, level, dst_limb[t]));
    be().ntt_forward(dst.data(), tables.data(), dst.size());
  }
  return dec;
}

void inner_product(const Tables& ctx, const Decomposition& dec, const SwitchKey& key, const u32* perm, u64* out0,
                   u64* out1) {
  const u64 n = ctx.n();
  const int L = ctx.max_level(), level = dec.level, el = dec.ext_limbs();
  if (level > key.level)
    throw InvalidArgument("cannot key-switch at level " + std::to_string(level) + ": the key was made for levels <= " +
                          std::to_string(key.level) + " (a bootstrapping key trimmed to the levels the bootstrap uses); "
                          "make it again for every level with ctx.generate_rotation_keys([step]) or "
                          "ctx.generate_conjugation_key()");
  parallel_for(el, [&](size_t e) {
    const int pi = ext_prime(ctx, level, static_cast<int>(e));
    const Modulus& m = ctx.modulus(pi);
    const size_t key_limb = key.limb_of(pi, L);
    u64* o0 = out0 + e * n;
    u64* o1 = out1 + e * n;
    // Sum over digits in 128 bits and reduce once: dnum products of < 2^122
    // stay far below the 2^127 bound of the reduction.
    const u64* d[64];
    const u64* kb[64];
    const u64* ka[64];
    std::vector<u64> permuted(perm ? static_cast<size_t>(dec.digits) * n : 0);
    // A compact key's a_j limbs are regenerated here, one limb per digit.
    thread_local std::vector<u64> regenerated;
    if (key.compact && regenerated.size() < static_cast<size_t>(dec.digits) * n)
      regenerated.resize(static_cast<size_t>(dec.digits) * n);
    for (int j = 0; j < dec.digits; ++j) {
      d[j] = dec.digit(j, n) + e * n;
      if (perm) {
        u64* t = permuted.data() + static_cast<size_t>(j) * n;
        for (u64 k = 0; k < n; ++k) t[k] = d[j][perm[k]];
        d[j] = t;
      }
      kb[j] = key.b(j, key_limb);
      if (key.compact) {
        u64* a = regenerated.data() + static_cast<size_t>(j) * n;
        key.expand_a(ctx, j, pi, a);
        ka[j] = a;
      } else {
        ka[j] = key.a(j, key_limb);
      }
    }
    be().key_switch_dot(o0, o1, d, kb, ka, dec.digits, n, m);
  });
}

void mod_down(const Tables& ctx, const u64* ext, int level, u64* out, bool accumulate) {
  const u64 n = ctx.n();
  const int alpha = ctx.alpha();
  // The P part to the coefficient domain.
  Buffer pcoef = Buffer::uninitialized(static_cast<size_t>(alpha) * n);
  std::memcpy(pcoef.data(), ext + static_cast<size_t>(level + 1) * n, pcoef.bytes());
  ntt_limbs(ctx, pcoef.data(), alpha, n, true, [&](int k) { return ctx.p_index(k); });
  // Convert to Q_level, back to NTT, then (x - conv) * P^-1.
  Buffer conv = Buffer::uninitialized(static_cast<size_t>(level + 1) * n);
  std::vector<const u64*> src;
  std::vector<u64*> dst;
  for (int k = 0; k < alpha; ++k) src.push_back(pcoef.data() + static_cast<size_t>(k) * n);
  for (int i = 0; i <= level; ++i) dst.push_back(conv.data() + static_cast<size_t>(i) * n);
  convert(ctx.moddown(level), src, dst, n, true);
  parallel_for(level + 1, [&](size_t i) {
    const int ii = static_cast<int>(i);
    backend::ntt_forward(dst[i], ctx.ntt(ii));  // fused with the tail below: the limb stays in cache
    const u64 q = ctx.prime(ii);
    const ShoupConst pinv = ctx.p_inv(ii);
    const u64* x = ext + i * n;
    u64* o = out + i * n;
    const u64* cv = dst[i];
    if (accumulate) {
      for (u64 k = 0; k < n; ++k) o[k] = add_mod(o[k], mul_shoup(sub_mod(x[k], cv[k], q), pinv, q), q);
    } else {
      for (u64 k = 0; k < n; ++k) kernels::sub_mul_const(o, x, cv, pinv, q, k);
    }
  });
}

void mod_down_rescale(const Tables& ctx, const u64* ext, int level, u64* out) {
  const u64 n = ctx.n();
  const int alpha = ctx.alpha();
  // q_level and P limbs are contiguous in ext: limbs level .. level + alpha.
  Buffer src = Buffer::uninitialized(static_cast<size_t>(alpha + 1) * n);
  std::memcpy(src.data(), ext + static_cast<size_t>(level) * n, src.bytes());
  ntt_limbs(ctx, src.data(), alpha + 1, n, true, [&](int k) { return k == 0 ? level : ctx.p_index(k - 1); });
  Buffer conv = Buffer::uninitialized(static_cast<size_t>(level) * n);
  std::vector<const u64*> s;
  std::vector<u64*> d;
  for (int k = 0; k <= alpha; ++k) s.push_back(src.data() + static_cast<size_t>(k) * n);
  for (int i = 0; i < level; ++i) d.push_back(conv.data() + static_cast<size_t>(i) * n);
  convert(ctx.moddown_rescale(level), s, d, n, true);
  parallel_for(level, [&](size_t i) {
    const int ii = static_cast<int>(i);
    backend::ntt_forward(d[i], ctx.ntt(ii));
    const u64 q = ctx.prime(ii);
    const ShoupConst inv = ctx.pq_inv(level, ii);
    for (u64 k = 0; k < n; ++k) kernels::sub_mul_const(out + i * n, ext + i * n, d[i], inv, q, k);
  });
}

}  // namespace ht
