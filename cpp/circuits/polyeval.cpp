// Baby-step giant-step evaluation of Chebyshev polynomials (see polyeval.hpp).
// Invariants: a power T_i (i >= 1) is a size-2 ciphertext at level lev(i) =
// Lc - ceil(log2 i) holding T_i(y) at its own scale (the .scale field, exact
// bookkeeping); a piece p is accumulated into a zero-initialised buffer whose
// level and scale are fixed before the first term is added, and a piece of
// degree d placed at level lam always satisfies lam <= Lc - ceil(log2(d+1)) + 1
// (so every power and giant step it needs sits at or above lam).
#include "circuits/polyeval.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>

#include "backend/backend.hpp"
#include "backend/kernels/elementwise.hpp"
#include "ckks/evaluator.hpp"
#include "ckks/keyswitch.hpp"
#include "core/error.hpp"
#include "runtime/parallel.hpp"

namespace ht {

namespace {

const char* const kOp = "evaluate a polynomial";

int ceil_log2(long long v) {
  int k = 0;
  while ((1LL << k) < v) ++k;
  return k;
}
bool is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

// Residue modulo q of the integer nearest to v (any magnitude: fmod is exact).
u64 residue(long double v, u64 q) {
  long double r = std::fmod(std::nearbyint(v), static_cast<long double>(q));
  if (r < 0) r += static_cast<long double>(q);
  const u64 out = static_cast<u64>(r);
  return out >= q ? out - q : out;
}
ShoupConst shoup(u64 w, u64 q) { return ShoupConst{w, static_cast<u64>((static_cast<u128>(w) << 64) / q)}; }

// ---- kernels on batches (parallel over batch x polynomials x limbs) ------------

// acc += round(c) * x on acc's limbs; x may sit at a higher level (dropping
// primes leaves its value and scale unchanged).
void axpy(const Tables& ctx, Ciphertext& acc, const Ciphertext& x, long double c) {
  const long double rc = std::nearbyint(c);
  if (rc == 0) return;
  const int limbs = acc.limbs();
  const u64 n = ctx.n();
  std::vector<ShoupConst> w(limbs);
  for (int i = 0; i < limbs; ++i) w[i] = shoup(residue(rc, ctx.prime(i)), ctx.prime(i));
  parallel_for(static_cast<size_t>(acc.batch) * x.size * limbs, [&](size_t idx) {
    const int i = static_cast<int>(idx % limbs);
    const int k = static_cast<int>((idx / limbs) % x.size);
    const int b = static_cast<int>(idx / (static_cast<size_t>(limbs) * x.size));
    const u64 q = ctx.prime(i);
    u64* o = acc.limb(b, k, i);
    const u64* s = x.limb(b, k, i);
    for (u64 t = 0; t < n; ++t) o[t] = add_mod(o[t], mul_shoup(s[t], w[i], q), q);
  });
}

// acc += round(v) (a constant polynomial: the same value at every NTT point).
void add_const(const Tables& ctx, Ciphertext& acc, long double v) {
  const long double rv = std::nearbyint(v);
  if (rv == 0) return;
  const int limbs = acc.limbs();
  const u64 n = ctx.n();
  parallel_for(static_cast<size_t>(acc.batch) * limbs, [&](size_t idx) {
    const int i = static_cast<int>(idx % limbs), b = static_cast<int>(idx / limbs);
    const u64 q = ctx.prime(i), r = residue(rv, q);
    u64* o = acc.limb(b, 0, i);
    for (u64 t = 0; t < n; ++t) kernels::add_const_limb(o, o, r, q, t);
  });
}

// acc (size 3) += k * (a (x) b), on acc's limbs; a and b may sit higher.
void tensor_acc(const Tables& ctx, Ciphertext& acc, const Ciphertext& a, const Ciphertext& b, u64 k) {
  const int limbs = acc.limbs();
  const u64 n = ctx.n();
  const bool same = &a == &b;
  parallel_for(static_cast<size_t>(acc.batch) * limbs, [&](size_t idx) {
    const int i = static_cast<int>(idx % limbs), bb = static_cast<int>(idx / limbs);
    const Modulus& m = ctx.modulus(i);
    const u64 q = m.value;
    const ShoupConst kw = shoup(k % q, q);
    const u64 *x0 = a.limb(bb, 0, i), *x1 = a.limb(bb, 1, i), *y0 = b.limb(bb, 0, i), *y1 = b.limb(bb, 1, i);
    u64 *d0 = acc.limb(bb, 0, i), *d1 = acc.limb(bb, 1, i), *d2 = acc.limb(bb, 2, i);
    for (u64 t = 0; t < n; ++t) {
      u64 p0 = mul_mod(x0[t], y0[t], m), p2 = mul_mod(x1[t], y1[t], m);
      const u64 c = mul_mod(x0[t], y1[t], m);
      u64 p1 = same ? add_mod(c, c, q) : add_mod(c, mul_mod(x1[t], y0[t], m), q);
      if (k != 1) {
        p0 = mul_shoup(p0, kw, q);
        p1 = mul_shoup(p1, kw, q);
        p2 = mul_shoup(p2, kw, q);
      }
      d0[t] = add_mod(d0[t], p0, q);
      d1[t] = add_mod(d1[t], p1, q);
      d2[t] = add_mod(d2[t], p2, q);
    }
  });
}

// Relinearization fused with the rescale: the evaluator's relinearize_rescale.
Ciphertext relin_rescale(const Tables& ctx, const KeyChain& keys, const Ciphertext& a) {
  return relinearize_rescale(ctx, keys, a);
}
Ciphertext relin(const Tables& ctx, const KeyChain& keys, const Ciphertext& a) { return relinearize(ctx, keys, a); }
Ciphertext divide(const Tables& ctx, const Ciphertext& a) { return rescale(ctx, a); }
Ciphertext zero_like(const Tables& ctx, const Ciphertext&, int size, int level, double scale, int batch) {
  return Ciphertext(ctx.n(), batch, size, level, scale, ctx.id());
}
Ciphertext clone(const Ciphertext& a) { return a; }

// ---- the same kernels on device-resident batches: backend calls only ------------
// (the same residues: every step is an exact modular operation)

void axpy(const Tables& ctx, DeviceCiphertext& acc, const DeviceCiphertext& x, long double c) {
  const long double rc = std::nearbyint(c);
  if (rc == 0) return;
  const int limbs = acc.limbs();
  const u64 n = ctx.n();
  backend::ConstLimbs<ShoupConst> l;
  for (int b = 0; b < acc.batch; ++b)
    for (int k = 0; k < x.size; ++k)
      for (int i = 0; i < limbs; ++i) {
        const u64 q = ctx.prime(i);
        l.push(acc.poly(b, k) + static_cast<size_t>(i) * n, x.poly(b, k) + static_cast<size_t>(i) * n,
               shoup(residue(rc, q), q), q);
      }
  backend::mul_const_add(acc.backend(), l, n);
}

void add_const(const Tables& ctx, DeviceCiphertext& acc, long double v) {
  const long double rv = std::nearbyint(v);
  if (rv == 0) return;
  const int limbs = acc.limbs();
  const u64 n = ctx.n();
  backend::ConstLimbs<u64> l;
  for (int b = 0; b < acc.batch; ++b)
    for (int i = 0; i < limbs; ++i) {
      u64* x = acc.poly(b, 0) + static_cast<size_t>(i) * n;
      l.push(x, x, residue(rv, ctx.prime(i)), ctx.prime(i));
    }
  backend::add_const(acc.backend(), l, n);
}

// acc (size 3) += k * (a (x) b): the three products of each batch element into
// a scratch batch, then one multiply-add by k over them.
void tensor_acc(const Tables& ctx, DeviceCiphertext& acc, const DeviceCiphertext& a, const DeviceCiphertext& b,
                u64 k) {
  backend::Backend& be = acc.backend();
  const int limbs = acc.limbs();
  const u64 n = ctx.n();
  const size_t words = static_cast<size_t>(limbs) * n;
  const bool same = &a == &b;
  std::vector<Modulus> moduli;
  for (int i = 0; i < limbs; ++i) moduli.push_back(ctx.modulus(i));
  backend::DeviceBuffer t = be.allocate(static_cast<size_t>(acc.batch) * 4 * words);
  backend::ConstLimbs<ShoupConst> l;
  for (int bb = 0; bb < acc.batch; ++bb) {
    u64* p = t.data() + static_cast<size_t>(bb) * 4 * words;
    const u64 *x0 = a.poly(bb, 0), *x1 = a.poly(bb, 1), *y0 = b.poly(bb, 0), *y1 = b.poly(bb, 1);
    be.elementwise(backend::Elementwise::mul, p, x0, y0, moduli.data(), limbs, n);
    be.elementwise(backend::Elementwise::mul, p + words, x0, y1, moduli.data(), limbs, n);
    if (same) {
      be.elementwise(backend::Elementwise::add, p + words, p + words, p + words, moduli.data(), limbs, n);
    } else {
      be.elementwise(backend::Elementwise::mul, p + 3 * words, x1, y0, moduli.data(), limbs, n);
      be.elementwise(backend::Elementwise::add, p + words, p + words, p + 3 * words, moduli.data(), limbs, n);
    }
    be.elementwise(backend::Elementwise::mul, p + 2 * words, x1, y1, moduli.data(), limbs, n);
    for (int part = 0; part < 3; ++part)
      for (int i = 0; i < limbs; ++i) {
        const u64 q = ctx.prime(i);
        l.push(acc.poly(bb, part) + static_cast<size_t>(i) * n, p + part * words + static_cast<size_t>(i) * n,
               shoup(k % q, q), q);
      }
  }
  backend::mul_const_add(be, l, n);
}

DeviceCiphertext relin_rescale(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a) {
  return resident::relinearize_rescale(ctx, keys, a);
}
DeviceCiphertext relin(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a) {
  return resident::relinearize(ctx, keys, a);
}
DeviceCiphertext divide(const Tables& ctx, const DeviceCiphertext& a) { return resident::rescale(ctx, a); }
DeviceCiphertext zero_like(const Tables& ctx, const DeviceCiphertext& like, int size, int level, double scale,
                           int batch) {
  return resident::make_batch(ctx, like.backend(), batch, size, level, scale, true);
}
DeviceCiphertext clone(const DeviceCiphertext& a) { return resident::copy(a); }

// ---- the plan: Chebyshev division into pieces ----------------------------------

struct Node {
  std::vector<double> c;  // coefficients of this piece (trimmed)
  int lam = 0;            // level of its unrescaled accumulation
  bool leaf = true;
  int G = 0;              // giant step T_G when split: c = q * T_G + r
  bool q_const = false;   // q is a constant: q0 * T_G joins as a scalar term
  double q0 = 0;
  std::unique_ptr<Node> q, r;
};

class Planner {
 public:
  Planner(int L1, int Lc, int g, double eps) : L1_(L1), Lc_(Lc), g_(g), eps_(eps) {}

  int lev(int i) const { return i == 1 ? L1_ : Lc_ - ceil_log2(i); }

  std::unique_ptr<Node> build(std::vector<double> c, int lam) {
    for (double& v : c)
      if (std::fabs(v) <= eps_) v = 0.0;
    while (!c.empty() && c.back() == 0.0) c.pop_back();
    if (c.empty()) return nullptr;
    auto node = std::make_unique<Node>();
    node->lam = lam;
    const int deg = static_cast<int>(c.size()) - 1;
    if (leaf_ok(c, lam)) {
      for (int i = 1; i <= deg; ++i)
        if (c[i] != 0.0) used.insert(i), ++axpys;
      node->c = std::move(c);
      return node;
    }
    node->leaf = false;
    int G = deg >= g_ ? g_ : 1;
    while (2 * G <= deg) G *= 2;
    if (lev(G) < lam) throw std::logic_error("polynomial plan: giant step below its piece");
    // c = q * T_G + r with T_G T_j = (T_{G+j} + T_{G-j}) / 2.
    std::vector<double> q(deg - G + 1, 0.0), r(c.begin(), c.begin() + G);
    q[0] = c[G];
    for (int i = G + 1; i <= deg; ++i) q[i - G] = 2.0 * c[i];
    for (int j = 1; j <= deg - G; ++j) r[G - j] -= 0.5 * q[j];
    node->G = G;
    used.insert(G);
    if (q.size() == 1) {
      node->q_const = true;
      node->q0 = q[0];
      ++axpys;
    } else {
      node->q = build(std::move(q), lam + 1);
      if (node->q) {
        ++tensors;
        (has_tensor(*node->q) ? relins : rescales) += 1;
      }
    }
    node->r = build(std::move(r), lam);
    node->c = std::move(c);
    return node;
  }

  static bool has_tensor(const Node& n) {
    if (n.leaf) return false;
    if (n.q) return true;
    return n.r && has_tensor(*n.r);
  }

  // Every power reachable from the ones used directly (T_1 excluded).
  std::set<int> closure() const {
    std::set<int> all;
    std::vector<int> todo(used.begin(), used.end());
    while (!todo.empty()) {
      const int i = todo.back();
      todo.pop_back();
      if (i <= 1 || !all.insert(i).second) continue;
      if (is_pow2(i)) {
        todo.push_back(i / 2);
      } else {
        const int a = 1 << (ceil_log2(i) - 1);
        todo.push_back(a);
        todo.push_back(i - a);
        todo.push_back(a - (i - a));
      }
    }
    return all;
  }

  std::set<int> used;
  int tensors = 0, relins = 0, rescales = 0, axpys = 0;

 private:
  bool leaf_ok(const std::vector<double>& c, int lam) const {
    const int deg = static_cast<int>(c.size()) - 1;
    if (deg > g_) return false;
    for (int i = 1; i <= deg; ++i)
      if (c[i] != 0.0 && lev(i) < lam) return false;
    return true;
  }
  int L1_, Lc_, g_;
  double eps_;
};

// ---- execution ------------------------------------------------------------------

// Written once over the ciphertext type: host Ciphertext (the kernels above)
// or DeviceCiphertext (backend calls), so both evaluate the same plan.
template <class Ciphertext>
class Run {
 public:
  Run(const Tables& ctx, const KeyChain& keys, PolyEvalStats& st, const Ciphertext& like)
      : ctx_(ctx), keys_(keys), st_(st), like_(like) {}

  Ciphertext zero(int size, int level, double scale, int batch) const {
    return zero_like(ctx_, like_, size, level, scale, batch);
  }

  void set_t1(Ciphertext leaf_t1) { t1_leaf_ = std::move(leaf_t1); }
  void set_t1_prod(Ciphertext t1) { t1_prod_ = std::move(t1); }

  const Ciphertext& leaf_power(int i) { return i == 1 ? t1_leaf_ : power(i); }

  // T_i for products (T_1 at the level the product chain starts from).
  const Ciphertext& power(int i) {
    if (i == 1) return t1_prod_;
    auto it = powers_.find(i);
    if (it != powers_.end()) return it->second;
    Ciphertext t = is_pow2(i) ? product(i / 2, i / 2) : product(1 << (ceil_log2(i) - 1), i - (1 << (ceil_log2(i) - 1)));
    ++st_.powers;
    return powers_.emplace(i, std::move(t)).first->second;
  }

  // T_{a+b} = 2 T_a T_b - T_{a-b} (a >= b). The product's scale is raised by a
  // small integer k so that the new power's scale stays in [0.75, 1.5] times
  // the canonical scale of its level.
  Ciphertext product(int a, int b) {
    const Ciphertext* diff = a == b ? nullptr : &power(a - b);
    const Ciphertext& A = power(a);
    const Ciphertext& B = power(b);
    const int l = std::min(A.level, B.level);
    if (l < 1) throw std::logic_error("polynomial plan: power below level 1");
    const double P = A.scale * B.scale;
    const double q = static_cast<double>(ctx_.prime(l));
    const double e = P / 2.0 / q / ctx_.scale_at(l - 1);
    const double k = e < 1.5 ? std::max(1.0, std::floor(1.5 / e)) : 1.0;
    const double S = k * P / 2.0;  // scale of the value 2 T_a T_b
    Ciphertext acc = zero(3, l, S, A.batch);
    tensor_acc(ctx_, acc, A, B, static_cast<u64>(k));
    ++st_.ct_products;
    if (diff) {
      axpy(ctx_, acc, *diff, -static_cast<long double>(S) / diff->scale);
      ++st_.scalar_products;
    } else {
      add_const(ctx_, acc, -static_cast<long double>(S));
    }
    acc.bound = 1.0;
    Ciphertext out = relin_rescale(ctx_, keys_, acc);
    ++st_.relinearizations;
    ++st_.rescales;
    out.scale = S / q;
    out.bound = 1.0;
    return out;
  }

  // The piece rescaled onto (n.lam - 1, sigma_out).
  Ciphertext full(const Node& n, double sigma_out) {
    const double S = sigma_out * static_cast<double>(ctx_.prime(n.lam));
    const bool three = Planner::has_tensor(n);
    Ciphertext acc = zero(three ? 3 : 2, n.lam, S, t1_leaf_.batch);
    into(n, S, acc);
    double bound = 0;
    for (double v : n.c) bound += std::fabs(v);
    acc.bound = std::max(bound, 1e-300);
    Ciphertext out = three ? relin_rescale(ctx_, keys_, acc) : divide(ctx_, acc);
    if (three) ++st_.relinearizations;
    ++st_.rescales;
    out.scale = sigma_out;
    return out;
  }

  // Adds the piece, unrescaled, at scale S into acc (level n.lam).
  void into(const Node& n, double S, Ciphertext& acc) {
    if (n.leaf) {
      for (size_t i = 1; i < n.c.size(); ++i) {
        if (n.c[i] == 0.0) continue;
        const Ciphertext& t = leaf_power(static_cast<int>(i));
        axpy(ctx_, acc, t, static_cast<long double>(n.c[i]) * S / t.scale);
        ++st_.scalar_products;
      }
      if (n.c[0] != 0.0) add_const(ctx_, acc, static_cast<long double>(n.c[0]) * S);
      return;
    }
    const Ciphertext& tg = power(n.G);
    if (n.q_const) {
      axpy(ctx_, acc, tg, static_cast<long double>(n.q0) * S / tg.scale);
      ++st_.scalar_products;
    } else if (n.q) {
      const Ciphertext qc = full(*n.q, S / tg.scale);
      tensor_acc(ctx_, acc, qc, tg, 1);
      ++st_.ct_products;
    }
    if (n.r) into(*n.r, S, acc);
  }

 private:
  const Tables& ctx_;
  const KeyChain& keys_;
  PolyEvalStats& st_;
  const Ciphertext& like_;
  Ciphertext t1_leaf_, t1_prod_;
  std::map<int, Ciphertext> powers_;
};

double plan_cost(const Planner& p) {
  // Rough relative costs: a power (tensor + key switch + rescale) = 1.
  return static_cast<double>(p.closure().size()) + 0.97 * p.relins + 0.2 * p.rescales + 0.03 * p.tensors +
         0.015 * p.axpys;
}

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

template <class Ciphertext>
Ciphertext evaluate(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct0, const ChebyshevPoly& p,
                    double out_scale, PolyEvalStats* stats) {
  if (ct0.context_id != ctx.id()) fail(kOp, "the ciphertext belongs to another context; encrypt it with this one");
  if (ct0.size < 2 || ct0.size > 3) fail(kOp, "the ciphertext has " + std::to_string(ct0.size) + " polynomials");
  if (!std::isfinite(p.a) || !std::isfinite(p.b) || !(p.a < p.b))
    fail(kOp, "the interval [" + fmt(p.a) + ", " + fmt(p.b) + "] must be finite with a < b");
  if (p.coeffs.empty()) fail(kOp, "the polynomial has no coefficients");
  double norm1 = 0;
  for (double v : p.coeffs) {
    if (!std::isfinite(v)) fail(kOp, "a coefficient is not finite");
    norm1 += std::fabs(v);
  }
  if (&keys.tables() != &ctx) fail(kOp, "the keys belong to another context");
  const Ciphertext relinearized = ct0.size == 3 ? relin(ctx, keys, ct0) : Ciphertext();
  const Ciphertext& x = ct0.size == 3 ? relinearized : ct0;
  PolyEvalStats local;
  PolyEvalStats& st = stats ? *stats : local;
  st = PolyEvalStats{};

  // Coefficients below 2^-52 of the 1-norm are rounding noise (odd/even functions).
  const double eps = norm1 * 0x1p-52;
  std::vector<double> c = p.coeffs;
  for (double& v : c)
    if (std::fabs(v) <= eps) v = 0.0;
  int d = static_cast<int>(c.size()) - 1;
  while (d > 0 && c[d] == 0.0) --d;
  c.resize(d + 1);

  const int L = x.level;
  if (d == 0) {
    const double s = out_scale > 0 ? out_scale : ctx.scale_at(L);
    Ciphertext out = zero_like(ctx, x, 2, L, s, x.batch);
    add_const(ctx, out, static_cast<long double>(c[0]) * s);
    out.bound = std::max(std::fabs(c[0]), 1e-300);
    return out;
  }

  // The change of variable y = alpha * x + beta. Free: y is m * x + m * beta /
  // alpha read at scale m * scale / alpha (m = round(alpha) >= 1).
  const double alpha = 2.0 / (p.b - p.a), beta = -(p.a + p.b) / (p.b - p.a);
  const double m = std::max(1.0, std::nearbyint(alpha));
  const double sigma1 = m * x.scale / alpha;
  const bool free = sigma1 / ctx.scale_at(L) <= 1.5 * (1 + 1e-12);
  const int depth = d == 1 ? 1 : chebyshev_depth(d) + (free ? 0 : 1);
  if (L < depth) {
    std::ostringstream os;
    os << "a degree-" << d << " polynomial on [" << fmt(p.a) << ", " << fmt(p.b) << "] needs " << depth
       << " levels (ceil(log2(" << d << " + 1)) = " << chebyshev_depth(d);
    if (depth > chebyshev_depth(d)) os << ", plus 1 for the change of variable to [-1, 1]";
    os << ") but the ciphertext is at level " << L << "; bootstrap it or use a lower degree";
    fail(kOp, os.str());
  }

  Run<Ciphertext> run(ctx, keys, st, x);
  {
    Ciphertext t1 = zero_like(ctx, x, 2, L, sigma1, x.batch);
    axpy(ctx, t1, x, m);
    add_const(ctx, t1, static_cast<long double>(m) * beta / alpha * x.scale);
    t1.bound = 1.0;
    if (free) run.set_t1_prod(clone(t1));
    run.set_t1(std::move(t1));
  }
  const int Lc = free ? L : L - 1;
  if (!free && d >= 2) {
    // y at the canonical scale of level L - 1: one scalar product and rescale.
    const double S = ctx.scale_at(L - 1) * static_cast<double>(ctx.prime(L));
    Ciphertext acc = zero_like(ctx, x, 2, L, S, x.batch);
    axpy(ctx, acc, x, static_cast<long double>(alpha) * S / x.scale);
    add_const(ctx, acc, static_cast<long double>(beta) * S);
    acc.bound = 1.0;
    Ciphertext y = divide(ctx, acc);
    ++st.scalar_products;
    ++st.rescales;
    y.scale = ctx.scale_at(L - 1);
    y.bound = 1.0;
    run.set_t1_prod(std::move(y));
  }
  const int out_level = L - depth;
  // Chains with regions of prime sizes (Params::level_bits): a product at
  // level l lands near s_l^2 / q_l. Where the canonical scale of l - 1 is far
  // below that (a region of larger primes above one of smaller primes), the
  // powers cannot be brought back without a level; only the final rescale may
  // cross such a boundary.
  for (int l = out_level + 2; l <= L; ++l) {
    const double natural = ctx.scale_at(l) * (ctx.scale_at(l) / static_cast<double>(ctx.prime(l)));
    if (ctx.scale_at(l - 1) < natural / 16) {
      std::ostringstream os;
      os << "the polynomial's levels " << L << " .. " << out_level << " cross from larger primes (level " << l
         << ", scale 2^" << std::lround(std::log2(ctx.scale_at(l))) << ") into smaller ones (level " << l - 1
         << ", scale 2^" << std::lround(std::log2(ctx.scale_at(l - 1)))
         << "); evaluate it within one region of prime sizes (only its last rescale may cross)";
      fail(kOp, os.str());
    }
  }
  const double sigma_out = out_scale > 0 ? out_scale : ctx.scale_at(out_level);
  if (!(std::fabs(std::log2(sigma_out / ctx.scale_at(out_level))) <= 20))
    fail(kOp, "the output scale 2^" + fmt(std::log2(sigma_out)) + " is not within a factor 2^20 of the canonical "
              "scale 2^" + fmt(std::log2(ctx.scale_at(out_level))) + " of level " + std::to_string(out_level));

  // Baby-step size g = 2^k with the lowest estimated cost.
  const int mdeg = chebyshev_depth(d);
  int best_k = 1;
  double best_cost = 0;
  for (int k = 1; k <= std::max(1, mdeg); ++k) {
    Planner pl(L, Lc, 1 << k, eps);
    pl.build(c, out_level + 1);
    const double cost = plan_cost(pl);
    if (k == 1 || cost < best_cost) best_cost = cost, best_k = k;
  }
  Planner plan(L, Lc, 1 << best_k, eps);
  std::unique_ptr<Node> root = plan.build(c, out_level + 1);
  st.baby_step = 1 << best_k;

  Ciphertext out = run.full(*root, sigma_out);
  out.scale = sigma_out;
  out.bound = std::max(norm1, 1e-300);
  st.levels = L - out.level;
  return out;
}

// The Chebyshev form of a polynomial given by its power-basis coefficients (at least one).
ChebyshevPoly from_power(const std::vector<double>& power_coeffs) {
  if (power_coeffs.empty()) fail(kOp, "the polynomial has no coefficients");
  return chebyshev_from_power(power_coeffs);
}

}  // namespace

Ciphertext eval_chebyshev(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct, const ChebyshevPoly& p,
                          PolyEvalStats* stats) {
  return evaluate(ctx, keys, ct, p, 0.0, stats);
}

Ciphertext eval_chebyshev_at_scale(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct,
                                   const ChebyshevPoly& p, double out_scale, PolyEvalStats* stats) {
  return evaluate(ctx, keys, ct, p, out_scale, stats);
}

Ciphertext eval_power(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct,
                      const std::vector<double>& power_coeffs, PolyEvalStats* stats) {
  return evaluate(ctx, keys, ct, from_power(power_coeffs), 0.0, stats);
}

namespace resident {

DeviceCiphertext eval_chebyshev_at_scale(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct,
                                         const ChebyshevPoly& p, double out_scale, PolyEvalStats* stats) {
  return evaluate(ctx, keys, ct, p, out_scale, stats);
}

DeviceCiphertext eval_power(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct,
                            const std::vector<double>& power_coeffs, PolyEvalStats* stats) {
  return evaluate(ctx, keys, ct, from_power(power_coeffs), 0.0, stats);
}

}  // namespace resident

}  // namespace ht
