// Arithmetic, rescale and level alignment. Rotations live in rotation.cpp,
// key switching in keyswitch.cpp.
#include "ckks/evaluator.hpp"

#include <cmath>
#include <cstring>
#include <optional>
#include <sstream>

#include "backend/backend.hpp"
#include "backend/cpu_add.hpp"
#include "backend/kernels/basis.hpp"
#include "backend/kernels/elementwise.hpp"
#include "ckks/keyswitch.hpp"
#include "core/error.hpp"
#include "runtime/parallel.hpp"

namespace ht {

namespace {

void check_ct(const Tables& ctx, const Ciphertext& a, const char* op) {
  if (a.context_id != ctx.id()) fail(op, "the ciphertext belongs to another context; encrypt it with this one");
  if (a.size < 2 || a.size > 3) fail(op, "the ciphertext has " + std::to_string(a.size) + " polynomials");
}

void check_pair(const Tables& ctx, const Ciphertext& a, const Ciphertext& b, const char* op) {
  check_ct(ctx, a, op);
  check_ct(ctx, b, op);
  if (a.batch != b.batch)
    fail(op, "batch sizes differ (" + std::to_string(a.batch) + " and " + std::to_string(b.batch) + " ciphertexts)");
}

// A ciphertext brought to a given level, copied only when it has to move.
struct AtLevel {
  std::optional<Ciphertext> owned;
  const Ciphertext* ptr;
  AtLevel(const Tables& ctx, const Ciphertext& a, int level) : ptr(&a) {
    if (a.level != level) {
      owned = level_to(ctx, a, level);
      ptr = &*owned;
    }
  }
  const Ciphertext& operator*() const { return *ptr; }
  const Ciphertext* operator->() const { return ptr; }
};

// Sets the value bound of a result and refuses values that decryption could
// not recover: |value| * scale must stay below half the product of the lowest
// min(level + 1, 3) primes (what decryption interpolates).
Ciphertext finish(const Tables& ctx, Ciphertext out, double bound, const char* op) {
  out.bound = bound;
  check_value_bound(ctx, out.level, out.scale, bound, op);
  return out;
}

void check_scales(const Ciphertext& a, const Ciphertext& b, const char* op) {
  if (std::fabs(a.scale / b.scale - 1.0) > 1e-9)
    fail(op, "scales differ (2^" + std::to_string(std::log2(a.scale)) + " and 2^" + std::to_string(std::log2(b.scale)) +
                 "); rescale the product first");
}

Ciphertext add_or_sub(const Tables& ctx, const Ciphertext& a0, const Ciphertext& b0, bool subtract) {
  const char* op = subtract ? "subtract" : "add";
  check_pair(ctx, a0, b0, op);
  const int level = std::min(a0.level, b0.level);
  AtLevel a(ctx, a0, level), b(ctx, b0, level);
  check_scales(*a, *b, op);
  const int size = std::max(a->size, b->size);
  Ciphertext out(ctx.n(), a->batch, size, level, a->scale, ctx.id(), false, false);
  const u64 n = ctx.n();
  // An output beyond the caches is written around them (no read of the fresh buffer first).
  const bool streaming = out.data.bytes() >= (size_t(8) << 20);
  parallel_for(static_cast<size_t>(out.batch) * size * (level + 1), [&](size_t idx) {
    const int i = static_cast<int>(idx % (level + 1));
    const int k = static_cast<int>((idx / (level + 1)) % size);
    const int bb = static_cast<int>(idx / ((level + 1) * size));
    const u64 q = ctx.prime(i);
    u64* o = out.limb(bb, k, i);
    const bool has_a = k < a->size, has_b = k < b->size;
    if (has_a && has_b) {
      const u64* x = a->limb(bb, k, i);
      const u64* y = b->limb(bb, k, i);
      cpu::add_limbs(o, x, y, q, n, subtract, streaming);
    } else if (has_a) {
      std::memcpy(o, a->limb(bb, k, i), n * sizeof(u64));
    } else {
      const u64* y = b->limb(bb, k, i);
      if (subtract) for (u64 t = 0; t < n; ++t) kernels::neg_limb(o, y, q, t);
      else std::memcpy(o, y, n * sizeof(u64));
    }
  });
  return finish(ctx, std::move(out), a->bound + b->bound, op);
}

void check_plain(const Tables& ctx, const Ciphertext& a, const Plaintext& p, const char* op) {
  check_ct(ctx, a, op);
  if (p.context_id != ctx.id()) fail(op, "the plaintext belongs to another context");
  if (p.batch != a.batch && p.batch != 1)
    fail(op, "the plaintext has " + std::to_string(p.batch) + " rows for " + std::to_string(a.batch) + " ciphertexts");
  if (p.level < a.level)
    fail(op, "the plaintext is encoded for level " + std::to_string(p.level) + ", below the ciphertext's level " +
                 std::to_string(a.level) + "; encode it for level " + std::to_string(a.level));
}

// Multiplies every limb of every polynomial by per-prime constants.
void mul_by_residues(const Tables& ctx, Ciphertext& c, const std::vector<u64>& res) {
  const u64 n = ctx.n();
  parallel_for(static_cast<size_t>(c.batch) * c.size * c.limbs(), [&](size_t idx) {
    const int i = static_cast<int>(idx % c.limbs());
    const u64 q = ctx.prime(i);
    u64* x = c.data.data() + idx * n;
    const ShoupConst w = ShoupConst{res[i], static_cast<u64>((u128(res[i]) << 64) / q)};
    for (u64 t = 0; t < n; ++t) kernels::mul_const_limb(x, x, w, q, t);
  });
}

Ciphertext truncate(const Tables& ctx, const Ciphertext& a, int level) {
  Ciphertext out(ctx.n(), a.batch, a.size, level, a.scale, ctx.id(), false, false);
  const size_t limb_words = ctx.n();
  for (int b = 0; b < a.batch; ++b)
    for (int k = 0; k < a.size; ++k)
      std::memcpy(out.poly(b, k), a.poly(b, k), (level + 1) * limb_words * sizeof(u64));
  return out;
}

}  // namespace

u64 residue_of(long double x, u64 q) {
  const long double r = std::fmod(std::nearbyint(x), static_cast<long double>(q));
  i64 v = static_cast<i64>(r);
  if (v < 0) v += static_cast<i64>(q);
  return static_cast<u64>(v);
}

std::vector<u64> level_to_residues(const Tables& ctx, int from, double scale, int level) {
  if (level > from)
    fail("change level", "cannot raise a ciphertext from level " + std::to_string(from) + " to " +
                              std::to_string(level) + " (that needs bootstrapping)");
  if (level < 0) fail("change level", "level must be >= 0");
  if (level == from) return {};
  // Multiply by round(s_level * q_from / scale), rescale: the scale becomes s_level;
  // then drop the remaining primes, which does not change the scale.
  const long double c = std::nearbyint(static_cast<long double>(ctx.scale_at(level)) *
                                       static_cast<long double>(ctx.prime(from)) / scale);
  if (!(c >= 1) || c >= 9.2e18L) fail("change level", "the ciphertext's scale cannot be aligned");
  std::vector<u64> res(from + 1);
  for (int i = 0; i <= from; ++i) res[i] = residue_of(c, ctx.prime(i));
  return res;
}

std::vector<u64> scalar_residues(const Tables& ctx, int level, double scale, double c, bool& rescale) {
  std::vector<u64> res(level + 1);
  // Integers cost no level at any magnitude; the callers check that the product fits.
  rescale = c != std::nearbyint(c);
  if (!rescale) {
    for (int i = 0; i <= level; ++i) res[i] = residue_of(c, ctx.prime(i));
    return res;
  }
  if (level < 1) fail("multiply by a scalar", "the ciphertext is at level 0 and a non-integer scalar needs one level");
  // The constant lands the product on the canonical scale of level - 1 from
  // whatever scale the input has.
  const long double v = static_cast<long double>(c) * ctx.scale_at(level - 1) *
                        (static_cast<long double>(ctx.prime(level)) / scale);
  for (int i = 0; i <= level; ++i) res[i] = residue_of(v, ctx.prime(i));
  return res;
}

void check_value_bound(const Tables& ctx, int level, double scale, double bound, const char* op) {
  double cap = 0;
  for (int i = 0; i <= std::min(level, 2); ++i) cap += std::log2(static_cast<double>(ctx.prime(i)));
  if (bound > 0 && std::log2(bound) + std::log2(scale) >= cap - 1) {
    std::ostringstream os;
    os << "the result may reach |x| = " << bound << ", which at scale 2^" << std::lround(std::log2(scale))
       << " exceeds what level " << level << " can hold (|x| < 2^" << std::lround(cap - 1 - std::log2(scale))
       << "); scale the values down (multiply by a small constant) before they reach the lowest levels";
    fail(op, os.str());
  }
}

Ciphertext add(const Tables& ctx, const Ciphertext& a, const Ciphertext& b) { return add_or_sub(ctx, a, b, false); }
Ciphertext sub(const Tables& ctx, const Ciphertext& a, const Ciphertext& b) { return add_or_sub(ctx, a, b, true); }

Ciphertext negate(const Tables& ctx, const Ciphertext& a) {
  check_ct(ctx, a, "negate");
  Ciphertext out(ctx.n(), a.batch, a.size, a.level, a.scale, ctx.id(), false, false);
  const u64 n = ctx.n();
  parallel_for(static_cast<size_t>(a.batch) * a.size * a.limbs(), [&](size_t idx) {
    const u64 q = ctx.prime(static_cast<int>(idx % a.limbs()));
    for (u64 t = 0; t < n; ++t) kernels::neg_limb(out.data.data() + idx * n, a.data.data() + idx * n, q, t);
  });
  out.bound = a.bound;
  return out;
}

Ciphertext add_plain(const Tables& ctx, const Ciphertext& a, const Plaintext& p) {
  return sub_plain(ctx, a, p, false, false);
}

Ciphertext sub_plain(const Tables& ctx, const Ciphertext& a, const Plaintext& p, bool negate_plain,
                     bool negate_ct) {
  check_plain(ctx, a, p, "add a plaintext");
  if (std::fabs(p.scale / a.scale - 1.0) > 1e-9) fail("add a plaintext", "the plaintext is encoded at another scale");
  const u64 n = ctx.n();
  Ciphertext out = negate_ct ? negate(ctx, a) : a;
  parallel_for(static_cast<size_t>(a.batch) * a.limbs(), [&](size_t idx) {
    const int i = static_cast<int>(idx % a.limbs()), b = static_cast<int>(idx / a.limbs());
    const u64 q = ctx.prime(i);
    u64* x = out.limb(b, 0, i);
    const u64* y = p.limb(p.batch == 1 ? 0 : b, 0, i);
    if (negate_plain) for (u64 k = 0; k < n; ++k) kernels::sub_limb(x, x, y, q, k);
    else for (u64 k = 0; k < n; ++k) kernels::add_limb(x, x, y, q, k);
  });
  return finish(ctx, std::move(out), a.bound + p.bound, "add a plaintext");
}

double plain_mul_scale(const Tables& ctx, int level) {
  if (level < 1) return ctx.scale_at(0);
  return ctx.scale_at(level - 1) * (static_cast<double>(ctx.prime(level)) / ctx.scale_at(level));
}

Ciphertext mul_plain(const Tables& ctx, const Ciphertext& a, const Plaintext& p) {
  check_plain(ctx, a, p, "multiply by a plaintext");
  if (a.level < 1)
    fail("multiply by a plaintext", "the ciphertext is at level 0 and no level is left to rescale; use a preset "
                                    "with more levels");
  const u64 n = ctx.n();
  Ciphertext t(n, a.batch, a.size, a.level, a.scale * p.scale, ctx.id(), false, false);
  parallel_for(static_cast<size_t>(a.batch) * a.size * a.limbs(), [&](size_t idx) {
    const int i = static_cast<int>(idx % a.limbs());
    const int b = static_cast<int>(idx / (a.limbs() * a.size));
    const Modulus& m = ctx.modulus(i);
    const u64* pl = p.limb(p.batch == 1 ? 0 : b, 0, i);
    for (u64 k = 0; k < n; ++k) kernels::mul_limb(t.data.data() + idx * n, a.data.data() + idx * n, pl, m, k);
  });
  Ciphertext out = rescale(ctx, t);
  if (std::fabs(out.scale / ctx.scale_at(out.level) - 1) > 1e-9)
    fail("multiply by a plaintext", "the plaintext was encoded for another level or purpose; encode it with "
                                    "for_multiply=True at the ciphertext's level " + std::to_string(a.level));
  out.scale = ctx.scale_at(out.level);
  return finish(ctx, std::move(out), a.bound * p.bound, "multiply by a plaintext");
}

Ciphertext add_scalar(const Tables& ctx, const Ciphertext& a, double c) {
  check_ct(ctx, a, "add a scalar");
  if (!std::isfinite(c)) fail("add a scalar", "the scalar is not finite");
  // residue_of is exact at any magnitude; whether the sum fits is finish()'s check.
  const long double v = static_cast<long double>(c) * a.scale;
  Ciphertext out = a;
  const u64 n = ctx.n();
  parallel_for(static_cast<size_t>(a.batch) * a.limbs(), [&](size_t idx) {
    const int i = static_cast<int>(idx % a.limbs()), b = static_cast<int>(idx / a.limbs());
    const u64 q = ctx.prime(i), r = residue_of(v, q);
    u64* x = out.limb(b, 0, i);
    // A constant polynomial has the same value at every NTT point.
    for (u64 k = 0; k < n; ++k) kernels::add_const_limb(x, x, r, q, k);
  });
  return finish(ctx, std::move(out), a.bound + std::fabs(c), "add a scalar");
}

Ciphertext mul_scalar(const Tables& ctx, const Ciphertext& a, double c) {
  check_ct(ctx, a, "multiply by a scalar");
  if (!std::isfinite(c)) fail("multiply by a scalar", "the scalar is not finite");
  bool rescale_once = false;
  const std::vector<u64> res = scalar_residues(ctx, a.level, a.scale, c, rescale_once);
  if (!rescale_once) {  // an integer
    Ciphertext out = a;
    mul_by_residues(ctx, out, res);
    return finish(ctx, std::move(out), a.bound * std::fabs(c), "multiply by a scalar");
  }
  Ciphertext t = a;
  mul_by_residues(ctx, t, res);
  Ciphertext out = rescale(ctx, t);
  out.scale = ctx.scale_at(out.level);
  return finish(ctx, std::move(out), a.bound * std::fabs(c), "multiply by a scalar");
}

Ciphertext multiply_no_relin(const Tables& ctx, const Ciphertext& a0, const Ciphertext& b0) {
  check_pair(ctx, a0, b0, "multiply");
  if (a0.size != 2 || b0.size != 2) fail("multiply", "relinearize the operands first (size-3 ciphertext)");
  const int level = std::min(a0.level, b0.level);
  AtLevel a(ctx, a0, level), b(ctx, b0, level);
  const u64 n = ctx.n();
  Ciphertext out(n, a->batch, 3, level, a->scale * b->scale, ctx.id(), false, false);
  const bool same = (&*a == &*b);
  parallel_for(static_cast<size_t>(out.batch) * (level + 1), [&](size_t idx) {
    const int i = static_cast<int>(idx % (level + 1)), bb = static_cast<int>(idx / (level + 1));
    const Modulus& m = ctx.modulus(i);
    const u64 *x0 = a->limb(bb, 0, i), *x1 = a->limb(bb, 1, i), *y0 = b->limb(bb, 0, i), *y1 = b->limb(bb, 1, i);
    u64 *d0 = out.limb(bb, 0, i), *d1 = out.limb(bb, 1, i), *d2 = out.limb(bb, 2, i);
    for (u64 k = 0; k < n; ++k) {
      d0[k] = mul_mod(x0[k], y0[k], m);
      const u64 cross = mul_mod(x0[k], y1[k], m);
      d1[k] = same ? add_mod(cross, cross, m.value) : add_mod(cross, mul_mod(x1[k], y0[k], m), m.value);
      d2[k] = mul_mod(x1[k], y1[k], m);
    }
  });
  out.bound = a->bound * b->bound;
  return out;
}

Ciphertext relinearize(const Tables& ctx, const KeyChain& keys, const Ciphertext& a) {
  check_ct(ctx, a, "relinearize");
  if (a.size == 2) return a;
  Ciphertext out(ctx.n(), a.batch, 2, a.level, a.scale, ctx.id(), false, false);
  const KeyView key = host_view(keys.relin_key());
  for (int b = 0; b < a.batch; ++b)
    relinearize_poly(backend::cpu(), ctx, key, a.poly(b, 0), a.poly(b, 1), a.poly(b, 2), a.level, out.poly(b, 0),
                     out.poly(b, 1));
  out.bound = a.bound;
  return out;
}

// Relinearization and rescale fused (keyswitch.hpp: relinearize_rescale_poly).
Ciphertext relinearize_rescale(const Tables& ctx, const KeyChain& keys, const Ciphertext& a) {
  const int level = a.level;
  Ciphertext out(ctx.n(), a.batch, 2, level - 1, a.scale / static_cast<double>(ctx.prime(level)), ctx.id(), false,
                 false);
  const KeyView key = host_view(keys.relin_key());
  for (int b = 0; b < a.batch; ++b)
    relinearize_rescale_poly(backend::cpu(), ctx, key, a.poly(b, 0), a.poly(b, 1), a.poly(b, 2), level,
                             out.poly(b, 0), out.poly(b, 1));
  out.bound = a.bound;
  return out;
}

Ciphertext multiply(const Tables& ctx, const KeyChain& keys, const Ciphertext& a, const Ciphertext& b) {
  check_pair(ctx, a, b, "multiply");
  if (std::min(a.level, b.level) < 1)
    fail("multiply", "an operand is at level 0 and no level is left to rescale the product; use a preset with "
                     "more levels (Context.max_level)");
  Ciphertext out = relinearize_rescale(ctx, keys, multiply_no_relin(ctx, a, b));
  if (std::fabs(out.scale / ctx.scale_at(out.level) - 1) < 1e-6) out.scale = ctx.scale_at(out.level);
  return finish(ctx, std::move(out), a.bound * b.bound, "multiply");
}

Ciphertext square(const Tables& ctx, const KeyChain& keys, const Ciphertext& a) { return multiply(ctx, keys, a, a); }

Ciphertext rescale(const Tables& ctx, const Ciphertext& a) {
  check_ct(ctx, a, "rescale");
  if (a.level < 1) fail("rescale", "the ciphertext is at level 0; no prime is left to divide by");
  const u64 n = ctx.n();
  const int l = a.level;
  const u64 ql = ctx.prime(l);
  Ciphertext out(n, a.batch, a.size, l - 1, a.scale / static_cast<double>(ql), ctx.id(), false, false);
  // The last limb of every polynomial, in the coefficient domain.
  const size_t polys = static_cast<size_t>(a.batch) * a.size;
  Buffer last = Buffer::uninitialized(polys * n);
  parallel_for(polys, [&](size_t pidx) {
    u64* x = last.data() + pidx * n;
    std::memcpy(x, a.data.data() + (pidx * a.limbs() + l) * n, n * sizeof(u64));
    backend::ntt_inverse(x, ctx.ntt(l));
  });
  parallel_for(polys * l, [&](size_t idx) {
    const size_t pidx = idx / l;
    const int i = static_cast<int>(idx % l);
    const Modulus& m = ctx.modulus(i);
    std::vector<u64> t(n);
    const u64* x = last.data() + pidx * n;
    // The centered residue makes (c - [c]_ql) / ql the rounded quotient.
    for (u64 k = 0; k < n; ++k) t[k] = kernels::centered_mod(x[k], ql, m);
    backend::ntt_forward(t.data(), ctx.ntt(i));
    const u64* src = a.data.data() + (pidx * a.limbs() + i) * n;
    u64* dst = out.data.data() + (pidx * out.limbs() + i) * n;
    for (u64 k = 0; k < n; ++k) kernels::sub_mul_const(dst, src, t.data(), ctx.inv_last(l, i), m.value, k);
  });
  return finish(ctx, std::move(out), a.bound, "rescale");
}

Ciphertext with_scale(const Ciphertext& a, double scale, double bound) {
  if (!(scale > 0) || !std::isfinite(scale))
    fail("with_scale", "scale must be positive and finite, got " + std::to_string(scale));
  if (!(bound >= 0) || !std::isfinite(bound))
    fail("with_scale", "bound must be finite and >= 0, got " + std::to_string(bound));
  Ciphertext out = a;
  out.scale = scale;
  out.bound = bound;
  return out;
}

Ciphertext level_to(const Tables& ctx, const Ciphertext& a, int level) {
  check_ct(ctx, a, "change level");
  const std::vector<u64> res = level_to_residues(ctx, a.level, a.scale, level);
  if (res.empty()) return a;
  Ciphertext t = a;
  mul_by_residues(ctx, t, res);
  Ciphertext r = rescale(ctx, t);
  Ciphertext out = r.level == level ? std::move(r) : truncate(ctx, r, level);
  out.scale = ctx.scale_at(level);
  return finish(ctx, std::move(out), a.bound, "change level");
}

}  // namespace ht
