// Device-resident operations as sequences of backend calls; each mirrors its
// host twin in ckks/evaluator step for step (same kernels, same order of
// modular operations), which is what makes the two bit-identical.
#include "ckks/resident.hpp"
#include "ckks/resident_detail.hpp"

#include <cmath>
#include <vector>

#include "ckks/evaluator.hpp"
#include "core/error.hpp"

namespace ht::resident {

using detail::check_ct;
using detail::check_pair;
using detail::empty_like;
using detail::finish;

namespace {

template <class Out, class In>
Out upload_batch(const In& x, backend::Backend& be) {
  Out out = empty_like<Out>(be, x.n, x.batch, x.size, x.level, x.scale, x.context_id);
  out.bound = x.bound;
  be.upload(out.data.data(), x.data.data(), x.data.size());
  return out;
}

// A plaintext operand must come from this context, live with the ciphertext, match its rows and reach its level.
void check_plain(const Tables& ctx, const DeviceCiphertext& a, const DevicePlaintext& p, const char* op) {
  if (p.context_id != ctx.id()) fail(op, "the plaintext belongs to another context");
  if (p.data.owner() != a.data.owner())
    fail(op, "the plaintext lives on " + p.device() + " and the ciphertext on " + a.device());
  if (p.batch != a.batch && p.batch != 1)
    fail(op, "the plaintext has " + std::to_string(p.batch) + " rows for " + std::to_string(a.batch) + " ciphertexts");
  if (p.level < a.level)
    fail(op, "the plaintext is encoded for level " + std::to_string(p.level) + ", below the ciphertext's level " +
                 std::to_string(a.level) + "; encode it for level " + std::to_string(a.level));
}

void check_scales(double a, double b, const char* op) {
  if (std::fabs(a / b - 1.0) > 1e-9)
    fail(op, "scales differ (2^" + std::to_string(std::log2(a)) + " and 2^" + std::to_string(std::log2(b)) +
                 "); rescale the product first");
}

std::vector<Modulus> moduli(const Tables& ctx, int limbs, int polys = 1) {
  std::vector<Modulus> m(static_cast<size_t>(limbs) * polys);
  for (size_t j = 0; j < m.size(); ++j) m[j] = ctx.modulus(static_cast<int>(j % limbs));
  return m;
}

// Every limb of every polynomial times per-prime constants, one backend call.
void mul_by_residues(const Tables& ctx, DeviceCiphertext& c, const std::vector<u64>& res) {
  const size_t polys = static_cast<size_t>(c.batch) * c.size, limbs = c.limbs();
  backend::ConstLimbs<ShoupConst> l;
  for (size_t p = 0; p < polys; ++p)
    for (size_t i = 0; i < limbs; ++i) {
      u64* x = c.data.data() + (p * limbs + i) * c.n;
      const u64 q = ctx.prime(static_cast<int>(i));
      l.push(x, x, ShoupConst{res[i], static_cast<u64>((u128(res[i]) << 64) / q)}, q);
    }
  backend::mul_const(c.backend(), l, c.n);
}

// The first `level + 1` limbs of every polynomial, copied on the device.
DeviceCiphertext truncate(const DeviceCiphertext& a, int level) {
  auto out = empty_like<DeviceCiphertext>(a.backend(), a.n, a.batch, a.size, level, a.scale, a.context_id);
  out.bound = a.bound;
  for (int b = 0; b < a.batch; ++b)
    for (int k = 0; k < a.size; ++k) a.backend().copy(out.poly(b, k), a.poly(b, k), (level + 1) * a.n);
  return out;
}

// A ciphertext brought to a given level on its device; no copy when it is there.
const DeviceCiphertext& at_level(const Tables& ctx, const DeviceCiphertext& a, int level, DeviceCiphertext& keep) {
  if (a.level == level) return a;
  keep = level_to(ctx, a, level);
  return keep;
}

DeviceCiphertext add_or_sub(const Tables& ctx, const DeviceCiphertext& a0, const DeviceCiphertext& b0,
                            bool subtract) {
  const char* op = subtract ? "subtract" : "add";
  check_pair(ctx, a0, b0, op);
  const int level = std::min(a0.level, b0.level);
  DeviceCiphertext ka, kb;
  const DeviceCiphertext& a = at_level(ctx, a0, level, ka);
  const DeviceCiphertext& b = at_level(ctx, b0, level, kb);
  check_scales(a.scale, b.scale, op);
  const int size = std::max(a.size, b.size);
  backend::Backend& be = a.backend();
  auto out = empty_like<DeviceCiphertext>(be, ctx.n(), a.batch, size, level, a.scale, ctx.id());
  const size_t words = static_cast<size_t>(level + 1) * ctx.n();
  if (a.size == b.size) {  // the whole batch is one launch
    const auto all = moduli(ctx, level + 1, a.batch * size);
    be.elementwise(subtract ? backend::Elementwise::sub : backend::Elementwise::add, out.data.data(), a.data.data(),
                   b.data.data(), all.data(), all.size(), ctx.n());
    return finish(ctx, std::move(out), a.bound + b.bound, op);
  }
  const auto m = moduli(ctx, level + 1);
  for (int bb = 0; bb < a.batch; ++bb)
    for (int k = 0; k < size; ++k) {
      const bool has_a = k < a.size, has_b = k < b.size;
      if (has_a && has_b)
        be.elementwise(subtract ? backend::Elementwise::sub : backend::Elementwise::add, out.poly(bb, k),
                       a.poly(bb, k), b.poly(bb, k), m.data(), level + 1, ctx.n());
      else if (has_a) be.copy(out.poly(bb, k), a.poly(bb, k), words);
      else if (subtract)
        be.elementwise(backend::Elementwise::neg, out.poly(bb, k), b.poly(bb, k), b.poly(bb, k), m.data(), level + 1,
                       ctx.n());
      else be.copy(out.poly(bb, k), b.poly(bb, k), words);
    }
  return finish(ctx, std::move(out), a.bound + b.bound, op);
}

}  // namespace

DeviceCiphertext upload(const Ciphertext& ct, backend::Backend& be) {
  return upload_batch<DeviceCiphertext>(ct, be);
}
DevicePlaintext upload(const Plaintext& pt, backend::Backend& be) { return upload_batch<DevicePlaintext>(pt, be); }

Ciphertext download(const DeviceCiphertext& ct) {
  Ciphertext out(ct.n, ct.batch, ct.size, ct.level, ct.scale, ct.context_id, false, false);
  out.bound = ct.bound;
  ct.backend().download(out.data.data(), ct.data.data(), ct.data.size());
  return out;
}

DeviceCiphertext copy(const DeviceCiphertext& ct) {
  auto out = empty_like<DeviceCiphertext>(ct.backend(), ct.n, ct.batch, ct.size, ct.level, ct.scale, ct.context_id);
  out.bound = ct.bound;
  ct.backend().copy(out.data.data(), ct.data.data(), ct.data.size());
  return out;
}

DeviceCiphertext make_batch(const Tables& ctx, backend::Backend& be, int batch, int size, int level, double scale,
                            bool zero) {
  auto out = empty_like<DeviceCiphertext>(be, ctx.n(), batch, size, level, scale, ctx.id());
  if (zero) be.zero(out.data.data(), out.words());
  return out;
}

DeviceCiphertext add(const Tables& ctx, const DeviceCiphertext& a, const DeviceCiphertext& b) {
  return add_or_sub(ctx, a, b, false);
}
DeviceCiphertext sub(const Tables& ctx, const DeviceCiphertext& a, const DeviceCiphertext& b) {
  return add_or_sub(ctx, a, b, true);
}

DeviceCiphertext negate(const Tables& ctx, const DeviceCiphertext& a) {
  check_ct(ctx, a, "negate");
  auto out = empty_like<DeviceCiphertext>(a.backend(), a.n, a.batch, a.size, a.level, a.scale, ctx.id());
  const auto m = moduli(ctx, a.limbs(), a.batch * a.size);  // the whole batch is one launch
  a.backend().elementwise(backend::Elementwise::neg, out.data.data(), a.data.data(), a.data.data(), m.data(),
                          m.size(), a.n);
  out.bound = a.bound;
  return out;
}

DeviceCiphertext mul_plain(const Tables& ctx, const DeviceCiphertext& a, const DevicePlaintext& p) {
  const char* op = "multiply by a plaintext";
  check_ct(ctx, a, op);
  check_plain(ctx, a, p, op);
  if (a.level < 1) fail(op, "the ciphertext is at level 0 and no level is left to rescale; use a preset with more levels");
  backend::Backend& be = a.backend();
  auto t = empty_like<DeviceCiphertext>(be, a.n, a.batch, a.size, a.level, a.scale * p.scale, ctx.id());
  const auto m = moduli(ctx, a.limbs());
  for (int b = 0; b < a.batch; ++b)
    for (int k = 0; k < a.size; ++k)
      be.elementwise(backend::Elementwise::mul, t.poly(b, k), a.poly(b, k), p.poly(p.batch == 1 ? 0 : b, 0), m.data(),
                     a.limbs(), a.n);
  DeviceCiphertext out = rescale(ctx, t);
  if (std::fabs(out.scale / ctx.scale_at(out.level) - 1) > 1e-9)
    fail(op, "the plaintext was encoded for another level or purpose; encode it with for_multiply=True at the "
             "ciphertext's level " + std::to_string(a.level));
  out.scale = ctx.scale_at(out.level);
  return finish(ctx, std::move(out), a.bound * p.bound, op);
}

DeviceCiphertext multiply_no_relin(const Tables& ctx, const DeviceCiphertext& a0, const DeviceCiphertext& b0) {
  check_pair(ctx, a0, b0, "multiply");
  if (a0.size != 2 || b0.size != 2) fail("multiply", "relinearize the operands first (size-3 ciphertext)");
  const int level = std::min(a0.level, b0.level);
  DeviceCiphertext ka, kb;
  const DeviceCiphertext& a = at_level(ctx, a0, level, ka);
  const DeviceCiphertext& b = at_level(ctx, b0, level, kb);
  backend::Backend& be = a.backend();
  auto out = empty_like<DeviceCiphertext>(be, ctx.n(), a.batch, 3, level, a.scale * b.scale, ctx.id());
  auto cross = be.allocate(static_cast<size_t>(level + 1) * ctx.n());
  const auto m = moduli(ctx, level + 1);
  const int L = level + 1;
  const u64 n = ctx.n();
  using E = backend::Elementwise;
  for (int bb = 0; bb < a.batch; ++bb) {
    // d0 = x0 y0, d1 = x0 y1 + x1 y0, d2 = x1 y1: the host's products and sum, in its order.
    be.elementwise(E::mul, out.poly(bb, 0), a.poly(bb, 0), b.poly(bb, 0), m.data(), L, n);
    be.elementwise(E::mul, out.poly(bb, 1), a.poly(bb, 0), b.poly(bb, 1), m.data(), L, n);
    be.elementwise(E::mul, cross.data(), a.poly(bb, 1), b.poly(bb, 0), m.data(), L, n);
    be.elementwise(E::add, out.poly(bb, 1), out.poly(bb, 1), cross.data(), m.data(), L, n);
    be.elementwise(E::mul, out.poly(bb, 2), a.poly(bb, 1), b.poly(bb, 1), m.data(), L, n);
  }
  out.bound = a.bound * b.bound;
  return out;
}

DeviceCiphertext rescale(const Tables& ctx, const DeviceCiphertext& a) {
  check_ct(ctx, a, "rescale");
  if (a.level < 1) fail("rescale", "the ciphertext is at level 0; no prime is left to divide by");
  backend::Backend& be = a.backend();
  const u64 n = ctx.n();
  const int l = a.level;
  const u64 ql = ctx.prime(l);
  auto out = empty_like<DeviceCiphertext>(be, n, a.batch, a.size, l - 1, a.scale / static_cast<double>(ql), ctx.id());
  const size_t polys = static_cast<size_t>(a.batch) * a.size;
  // 1. The last limb of every polynomial, in the coefficient domain.
  auto last = be.allocate(polys * n);
  std::vector<u64*> last_p(polys);
  std::vector<const NttTables*> last_t(polys, &ctx.ntt(l));
  for (size_t p = 0; p < polys; ++p) {
    last_p[p] = last.data() + p * n;
    be.copy(last_p[p], a.data.data() + (p * a.limbs() + l) * n, n);
  }
  be.ntt_inverse(last_p.data(), last_t.data(), polys);
  // 2. Its centered lift to every lower prime, back in the NTT domain.
  auto lifted = be.allocate(polys * l * n);
  std::vector<u64*> t(polys * l), o(polys * l);
  std::vector<const u64*> src(polys * l), a_l(polys * l), t_c(polys * l);
  std::vector<const NttTables*> tables(polys * l);
  std::vector<Modulus> mods(polys * l);
  std::vector<ShoupConst> inv(polys * l);
  std::vector<u64> q(polys * l);
  for (size_t p = 0; p < polys; ++p)
    for (int i = 0; i < l; ++i) {
      const size_t j = p * l + i;
      t[j] = lifted.data() + j * n;
      t_c[j] = t[j];
      src[j] = last_p[p];
      tables[j] = &ctx.ntt(i);
      mods[j] = ctx.modulus(i);
      inv[j] = ctx.inv_last(l, i);
      q[j] = ctx.prime(i);
      a_l[j] = a.data.data() + (p * a.limbs() + i) * n;
      o[j] = out.data.data() + (p * out.limbs() + i) * n;
    }
  be.centered_reduce(t.data(), src.data(), ql, mods.data(), t.size(), n);
  be.ntt_forward(t.data(), tables.data(), t.size());
  // 3. (a_i - lift_i) / q_l.
  be.sub_mul_const(o.data(), a_l.data(), t_c.data(), inv.data(), q.data(), o.size(), n);
  return finish(ctx, std::move(out), a.bound, "rescale");
}

DeviceCiphertext level_to(const Tables& ctx, const DeviceCiphertext& a, int level) {
  check_ct(ctx, a, "change level");
  const std::vector<u64> res = level_to_residues(ctx, a.level, a.scale, level);
  if (res.empty()) return copy(a);
  DeviceCiphertext t = copy(a);
  mul_by_residues(ctx, t, res);
  DeviceCiphertext r = rescale(ctx, t);
  DeviceCiphertext out = r.level == level ? std::move(r) : truncate(r, level);
  out.scale = ctx.scale_at(level);
  return finish(ctx, std::move(out), a.bound, "change level");
}

DeviceCiphertext add_plain(const Tables& ctx, const DeviceCiphertext& a, const DevicePlaintext& p, bool negate_plain,
                           bool negate_ct) {
  const char* op = "add a plaintext";
  check_ct(ctx, a, op);
  check_plain(ctx, a, p, op);
  if (std::fabs(p.scale / a.scale - 1.0) > 1e-9) fail(op, "the plaintext is encoded at another scale");
  DeviceCiphertext out = negate_ct ? negate(ctx, a) : copy(a);
  const auto m = moduli(ctx, a.limbs());
  using E = backend::Elementwise;
  for (int b = 0; b < a.batch; ++b)  // the first a.limbs() limbs of p's polynomial
    a.backend().elementwise(negate_plain ? E::sub : E::add, out.poly(b, 0), out.poly(b, 0),
                            p.poly(p.batch == 1 ? 0 : b, 0), m.data(), a.limbs(), a.n);
  return finish(ctx, std::move(out), a.bound + p.bound, op);
}

DeviceCiphertext add_scalar(const Tables& ctx, const DeviceCiphertext& a, double c) {
  const char* op = "add a scalar";
  check_ct(ctx, a, op);
  if (!std::isfinite(c)) fail(op, "the scalar is not finite");
  const long double v = static_cast<long double>(c) * a.scale;
  DeviceCiphertext out = copy(a);
  // A constant polynomial has the same value at every NTT point: one residue per limb.
  const size_t limbs = a.limbs();
  backend::ConstLimbs<u64> l;
  for (int b = 0; b < a.batch; ++b)
    for (size_t i = 0; i < limbs; ++i) {
      u64* x = out.poly(b, 0) + i * a.n;
      const u64 q = ctx.prime(static_cast<int>(i));
      l.push(x, x, residue_of(v, q), q);
    }
  backend::add_const(a.backend(), l, a.n);
  return finish(ctx, std::move(out), a.bound + std::fabs(c), op);
}

DeviceCiphertext mul_scalar(const Tables& ctx, const DeviceCiphertext& a, double c) {
  const char* op = "multiply by a scalar";
  check_ct(ctx, a, op);
  if (!std::isfinite(c)) fail(op, "the scalar is not finite");
  bool rescale_once = false;
  const std::vector<u64> res = scalar_residues(ctx, a.level, a.scale, c, rescale_once);
  DeviceCiphertext out;
  if (!rescale_once) {  // an integer
    out = copy(a);
    mul_by_residues(ctx, out, res);
  } else {
    DeviceCiphertext t = copy(a);
    mul_by_residues(ctx, t, res);
    out = rescale(ctx, t);
    out.scale = ctx.scale_at(out.level);
  }
  return finish(ctx, std::move(out), a.bound * std::fabs(c), op);
}

}  // namespace ht::resident
