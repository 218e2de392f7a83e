#include "ckks/keyswitch.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu_dot.hpp"
#include "backend/cpu_ntt.hpp"
#include "backend/kernels/basis.hpp"
#include "backend/kernels/elementwise.hpp"
#include "runtime/parallel.hpp"

namespace ht {

namespace {
// Prime index of ext limb e at `level`: Q primes first, then P.
inline int ext_prime(const Tables& ctx, int level, int e) {
  return e <= level ? e : ctx.p_index(e - level - 1);
}
// Runs a basis conversion over all N coefficients, four at a time, in
// chunks spread over the threads.
void convert(const BasisConverter& conv, const std::vector<const u64*>& src, const std::vector<u64*>& dst, u64 n,
             bool exact) {
  const auto view = conv.view();
  constexpr int W = 4;
  const u64 chunk = 1024;
  const u64 chunks = (n + chunk - 1) / chunk;
  parallel_for(chunks, [&](size_t ch) {
    std::vector<u64> y(static_cast<size_t>(view.nsrc) * W);
    const u64 end = std::min(n, (ch + 1) * chunk);
    for (u64 k = ch * chunk; k < end; k += W) {
      if (exact) kernels::basis_convert_block<W, true>(view, src.data(), dst.data(), y.data(), k);
      else kernels::basis_convert_block<W, false>(view, src.data(), dst.data(), y.data(), k);
    }
  });
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
  parallel_for(level + 1, [&](size_t i) { cpu::ntt_inverse(coef.data() + i * n, ctx.ntt(static_cast<int>(i))); });

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
    parallel_for(dst.size(), [&](size_t t) { cpu::ntt_forward(dst[t], ctx.ntt(ext_prime(ctx, level, dst_limb[t]))); });
  }
  return dec;
}

void inner_product(const Tables& ctx, const Decomposition& dec, const SwitchKey& key, const u32* perm, u64* out0,
                   u64* out1) {
  const u64 n = ctx.n();
  const int L = ctx.max_level(), level = dec.level, el = dec.ext_limbs();
  const u64 key_limbs = static_cast<u64>(L + 1 + ctx.alpha());
  parallel_for(el, [&](size_t e) {
    const int pi = ext_prime(ctx, level, static_cast<int>(e));
    const Modulus& m = ctx.modulus(pi);
    const size_t key_limb = static_cast<size_t>(pi);  // key limbs are indexed by prime
    u64* o0 = out0 + e * n;
    u64* o1 = out1 + e * n;
    // Sum over digits in 128 bits and reduce once: dnum products of < 2^122
    // stay far below the 2^127 bound of the reduction.
    const u64* d[64];
    const u64* kb[64];
    const u64* ka[64];
    std::vector<u64> permuted(perm ? static_cast<size_t>(dec.digits) * n : 0);
    for (int j = 0; j < dec.digits; ++j) {
      d[j] = dec.digit(j, n) + e * n;
      if (perm) {
        u64* t = permuted.data() + static_cast<size_t>(j) * n;
        for (u64 k = 0; k < n; ++k) t[k] = d[j][perm[k]];
        d[j] = t;
      }
      kb[j] = key.b(j, key_limbs, n) + key_limb * n;
      ka[j] = key.a(j, key_limbs, n) + key_limb * n;
    }
    cpu::dot_two(o0, o1, d, kb, ka, dec.digits, n, m);
  });
}

void mod_down(const Tables& ctx, const u64* ext, int level, u64* out, bool accumulate) {
  const u64 n = ctx.n();
  const int alpha = ctx.alpha();
  // The P part to the coefficient domain.
  Buffer pcoef = Buffer::uninitialized(static_cast<size_t>(alpha) * n);
  std::memcpy(pcoef.data(), ext + static_cast<size_t>(level + 1) * n, pcoef.bytes());
  parallel_for(alpha, [&](size_t k) { cpu::ntt_inverse(pcoef.data() + k * n, ctx.ntt(ctx.p_index(static_cast<int>(k)))); });
  // Convert to Q_level, back to NTT, then (x - conv) * P^-1.
  Buffer conv = Buffer::uninitialized(static_cast<size_t>(level + 1) * n);
  std::vector<const u64*> src;
  std::vector<u64*> dst;
  for (int k = 0; k < alpha; ++k) src.push_back(pcoef.data() + static_cast<size_t>(k) * n);
  for (int i = 0; i <= level; ++i) dst.push_back(conv.data() + static_cast<size_t>(i) * n);
  convert(ctx.moddown(level), src, dst, n, true);
  parallel_for(level + 1, [&](size_t i) {
    const int ii = static_cast<int>(i);
    cpu::ntt_forward(dst[i], ctx.ntt(ii));
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
  parallel_for(alpha + 1, [&](size_t k) {
    const int prime = k == 0 ? level : ctx.p_index(static_cast<int>(k) - 1);
    cpu::ntt_inverse(src.data() + k * n, ctx.ntt(prime));
  });
  Buffer conv = Buffer::uninitialized(static_cast<size_t>(level) * n);
  std::vector<const u64*> s;
  std::vector<u64*> d;
  for (int k = 0; k <= alpha; ++k) s.push_back(src.data() + static_cast<size_t>(k) * n);
  for (int i = 0; i < level; ++i) d.push_back(conv.data() + static_cast<size_t>(i) * n);
  convert(ctx.moddown_rescale(level), s, d, n, true);
  parallel_for(level, [&](size_t i) {
    const int ii = static_cast<int>(i);
    cpu::ntt_forward(d[i], ctx.ntt(ii));
    const u64 q = ctx.prime(ii);
    const ShoupConst inv = ctx.pq_inv(level, ii);
    for (u64 k = 0; k < n; ++k) kernels::sub_mul_const(out + i * n, ext + i * n, d[i], inv, q, k);
  });
}

}  // namespace ht
