#include "boot/executor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>

#include "boot/encapsulation.hpp"
#include "boot/modraise.hpp"
#include "ckks/evaluator.hpp"
#include "circuits/polyeval.hpp"
#include "core/error.hpp"

namespace ht {

namespace boot_ops {
// The host operations (namespace ht) and their resident twins as one overload
// set (the directive places ht::resident's names beside ht's), so that the
// circuit below is written once over the ciphertext type.
using namespace ht::resident;

inline Ciphertext copy_of(const Ciphertext& c) { return Ciphertext(c); }
inline DeviceCiphertext copy_of(const DeviceCiphertext& c) { return resident::copy(c); }
}  // namespace boot_ops

namespace {

std::string fixed3(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

// The free rescalings of bootstrapping: the same residues read at another
// scale with a new tracked bound (the checks of with_scale, no copy).
template <class Ct>
Ct relabel(Ct c, double scale, double bound) {
  (void)with_scale(Ciphertext{}, scale, bound);
  c.scale = scale;
  c.bound = bound;
  return c;
}

}  // namespace

double boot_error_bound(double bound, double message_ratio, int arcsine_degree, double noise_bound) {
  const double b = bound;
  constexpr double pi = 3.141592653589793;  // math.pi
  const double w = 2 * pi * b / message_ratio;
  double bend;
  switch (arcsine_degree) {
    case 0: bend = w * w / 6; break;
    case 3: bend = 3 * std::pow(w, 4.0) / 40; break;
    case 5: bend = 5 * std::pow(w, 6.0) / 112; break;
    default: fail("bound a bootstrap's error", "arcsine_degree must be 0, 3 or 5, got " + std::to_string(arcsine_degree));
  }
  return std::max(b, 1.0) * noise_bound + 1.5 * b * bend;
}

// One run of the plan over ciphertexts of type Ct (host or resident).
template <class Ct>
struct BootRun {
  const BootExecutor& ex;
  const BootPlan& p;
  const Tables& ctx;
  const KeyChain& keys;

  BootRun(const BootExecutor& e, const Tables& c, const KeyChain& k) : ex(e), p(e.plan_), ctx(c), keys(k) {}

  // `in` with its tracked bound lowered to `bound`: `in` itself when it is
  // its bound already, else a copy kept in `storage`.
  static const Ct& bounded(const Ct& in, double bound, Ct& storage) {
    if (bound == in.bound) return in;
    storage = boot_ops::copy_of(in);
    storage.bound = bound;
    return storage;
  }

  Ct eval_mod(Ct ct, bool half, bool even) const {
    using namespace boot_ops;
    Ct y;
    if (even && p.even_poly) {
      const double c = p.even_shift, span = p.even_span;
      const double s = ct.scale * span, b = ct.bound / span;
      Ct u = add_scalar(ctx, relabel(std::move(ct), s, b), -c / span);
      Ct z = add_scalar(ctx, mul_scalar(ctx, square(ctx, keys, u), 2.0), -1.0);  // T_2(u): one level
      y = eval_chebyshev_at_scale(ctx, keys, z, *p.even_poly, 0.0, nullptr);
    } else {
      y = eval_chebyshev_at_scale(ctx, keys, ct, p.cos_poly, 0.0, nullptr);
    }
    for (int k = 0; k < p.double_angles; ++k) {
      if (half && k == p.double_angles - 1 && !p.arcsine_degree)  // cos(2a) / 2 = cos(a)^2 - 1/2
        y = add_scalar(ctx, square(ctx, keys, y), -0.5);
      else  // cos(2a) = 2 cos(a)^2 - 1
        y = add_scalar(ctx, mul_scalar(ctx, square(ctx, keys, y), 2.0), -1.0);
    }
    if (p.arcsine_degree)  // arcsin(sin(2 pi u)) = 2 pi u: undo the sine's bend
      y = eval_chebyshev_at_scale(ctx, keys, y, half ? p.arcsine_half : p.arcsine, p.eval_mod_scale, nullptr);
    return y;
  }

  // Classic order: the input at level 0 times `multiplier`.
  Ct to_level0(const Ct& in, u64 multiplier) const {
    using namespace boot_ops;
    Ct low;
    if (in.level > 0) low = level_to(ctx, in, 0);
    const Ct& ct = in.level > 0 ? low : in;
    const double s0 = ctx.scale_at(0);
    if (std::abs(ct.scale / s0 - 1) > 1e-9)
      fail("bootstrap", "the ciphertext is at level 0 with scale 2^" + fixed3(std::log2(ct.scale)) +
                            ", not the level's canonical 2^" + fixed3(std::log2(s0)) +
                            "; bootstrap it before it reaches level 0 (level_to(0) aligns the scale)");
    if (multiplier > 1) return mul_scalar(ctx, ct, static_cast<double>(multiplier));
    return in.level > 0 ? std::move(low) : boot_ops::copy_of(in);
  }

  // 2 (Re a + i Re b): one conjugation, no level.
  Ct real_pair(const Ct& a, const Ct& b) const {
    using namespace boot_ops;
    const Ct ib = mul_by_i(ctx, b, false);
    return add(ctx, add(ctx, a, ib), conjugate(ctx, keys, sub(ctx, a, ib)));
  }

  // stc_first: SlotToCoeff on the input's last levels; the packed
  // coefficients at level 0 are then s_0 BR(z), times `multiplier`.
  Ct to_coefficients(const Ct& in, double bound, u64 multiplier) const {
    using namespace boot_ops;
    const int lv = p.stc_levels;
    if (in.level < lv)
      throw InvalidArgument(
          "cannot bootstrap in the stc_first order (SlotToCoeff first, the default order): the ciphertext is at "
          "level " + std::to_string(in.level) + ", below the " + std::to_string(lv) + " levels SlotToCoeff uses; "
          "bootstrap at level >= " + std::to_string(lv) + " (ctx.bootstrap_contract.input_level), or pass "
          "stc_first=False for the classic order (any level, output " + std::to_string(lv) + " levels lower, about "
          "4 bits less precise at N = 2^16)");
    const double canonical = ctx.scale_at(lv);
    if (in.level == lv && std::abs(in.scale / canonical - 1) > 1e-9)
      fail("bootstrap", "the ciphertext is at level " + std::to_string(lv) + " with scale 2^" +
                            fixed3(std::log2(in.scale)) + ", not the level's canonical 2^" + fixed3(std::log2(canonical)));
    Ct ct;
    bool own = in.level > lv;  // ct holds the value (else it is still `in`)
    if (own) ct = level_to(ctx, in, lv);
    for (const auto& lt : p.stc) {
      ct = relabel(apply_linear_transform(ctx, keys, own ? ct : in, *lt), ctx.scale_at(lt->level - 1), bound);
      own = true;
    }
    if (multiplier > 1) ct = mul_scalar(ctx, ct, static_cast<double>(multiplier));
    return ct;
  }

  // ModRaise, CoeffToSlot, EvalMod (and SlotToCoeff in the classic order) of
  // a level-0 ciphertext holding z (z / 2 with half). real_values (stc_first,
  // not half): one EvalMod, the imaginary half is dropped.
  Ct refresh(const Ct& ct, bool half, bool real_values) const {
    using namespace boot_ops;
    ex.refreshes_.fetch_add(1);
    Ct a;
    if (p.encapsulation)  // ModRaise under the sparse s' (small |I|), then straight back to s
      a = switch_to_dense(ctx, keys, mod_raise(ctx, switch_to_sparse(ctx, keys, ct)));
    else
      a = mod_raise(ctx, ct);
    a = relabel(std::move(a), p.input_scale / p.headroom, 0.0);
    const size_t n = p.cts.size();
    for (size_t k = 0; k < n; ++k) {
      if (k > 0 && k == n - 1 && p.headroom > 1) {  // the values carry 2^h since the first transform
        const double s = a.scale * p.headroom, b = a.bound / p.headroom;
        a = relabel(std::move(a), s, b);
      }
      a = apply_linear_transform(ctx, keys, a, *p.cts[k]);
    }
    Ct conj = conjugate(ctx, keys, a);
    Ct real = add(ctx, a, conj);  // BR t_lo / (K q0)
    if (p.stc_first && real_values && !half) {
      Ct w = eval_mod(std::move(real), false, true);
      return relabel(std::move(w), ctx.scale_at(p.output_level), 0.0);
    }
    Ct imag = mul_by_i(ctx, sub(ctx, a, conj), true);  // BR t_hi / (K q0)
    a = Ct{};
    conj = Ct{};
    real = eval_mod(std::move(real), half, p.stc_first);
    imag = eval_mod(std::move(imag), half, p.stc_first);
    Ct w = add(ctx, real, mul_by_i(ctx, imag, false));
    if (p.stc_first) return relabel(std::move(w), ctx.scale_at(p.output_level), 0.0);
    w = relabel(std::move(w), p.stc_input_scale, 0.0);
    for (const auto& lt : p.stc) w = apply_linear_transform(ctx, keys, w, *lt);
    return w;
  }

  Ct single(const Ct& in, double bound, bool real_values) const {
    const double b = std::min(bound, in.bound);
    Ct storage;
    const Ct& ct = bounded(in, b, storage);
    Ct w = p.stc_first ? refresh(to_coefficients(ct, b, p.premultiplier), false, real_values)
                       : refresh(to_level0(ct, p.premultiplier), false, false);
    const double s = w.scale;
    return relabel(std::move(w), s, b + ex.error_bound(b));
  }

  std::pair<Ct, Ct> pair(const Ct& in_a, const Ct& in_b, double bound_a, double bound_b) const {
    using namespace boot_ops;
    if (in_a.batch != in_b.batch)
      fail("bootstrap a pair", "batch sizes differ (" + std::to_string(in_a.batch) + " and " +
                                   std::to_string(in_b.batch) + " ciphertexts)");
    const double ba = std::min(bound_a, in_a.bound), bb = std::min(bound_b, in_b.bound);
    Ct sa, sb;
    const Ct& a = bounded(in_a, ba, sa);
    const Ct& b = bounded(in_b, bb, sb);
    const u64 m = p.premultiplier;
    if (m % 2) return {single(a, ba, true), single(b, bb, true)};
    Ct w;
    if (p.stc_first) {
      const int lv = std::max(p.stc_levels, std::min(a.level, b.level));
      Ct la, lb;
      if (a.level > lv) la = level_to(ctx, a, lv);
      if (b.level > lv) lb = level_to(ctx, b, lv);
      const Ct z = real_pair(a.level > lv ? la : a, b.level > lv ? lb : b);
      w = refresh(to_coefficients(z, 2.0 * std::max(ba, bb), m / 2), true, false);
    } else {
      Ct z = real_pair(to_level0(a, 1), to_level0(b, 1));
      if (m > 2) z = mul_scalar(ctx, z, static_cast<double>(m / 2));
      w = refresh(z, true, false);  // (Re a + i Re b) / 2
    }
    const Ct conj = conjugate(ctx, keys, w);
    Ct re = add(ctx, w, conj);                                // Re(a + i b) = a
    Ct im = mul_by_i(ctx, sub(ctx, w, conj), true);           // Im(a + i b) = b
    const double ra = re.scale, rb = im.scale;
    return {relabel(std::move(re), ra, ba + ex.error_bound(ba)), relabel(std::move(im), rb, bb + ex.error_bound(bb))};
  }

  std::vector<Ct> many(const std::vector<const Ct*>& cts, const std::vector<double>& bounds) const {
    if (bounds.size() != cts.size())
      fail("bootstrap many", "need one bound per ciphertext (" + std::to_string(cts.size()) + "), got " +
                                 std::to_string(bounds.size()));
    for (const Ct* c : cts)
      if (c == nullptr) fail("bootstrap many", "a ciphertext is missing (null)");
    std::vector<Ct> out(cts.size());
    size_t i = 0;
    for (; i + 1 < cts.size(); i += 2)
      std::tie(out[i], out[i + 1]) = pair(*cts[i], *cts[i + 1], bounds[i], bounds[i + 1]);
    if (i < cts.size()) out[i] = single(*cts[i], bounds[i], true);
    return out;
  }
};

BootExecutor::BootExecutor(BootPlan plan) : plan_(std::move(plan)) {
  const BootPlan& p = plan_;
  const char* op = "make a bootstrap executor";
  if (p.cts.empty() || p.stc.empty()) fail(op, "the plan needs the CoeffToSlot and SlotToCoeff transforms");
  for (const auto* chain : {&p.cts, &p.stc})
    for (const auto& lt : *chain)
      if (!lt) fail(op, "a transform of the plan is missing (None)");
  if (p.arcsine_degree != 0 && p.arcsine_degree != 3 && p.arcsine_degree != 5)
    fail(op, "arcsine_degree must be 0, 3 or 5, got " + std::to_string(p.arcsine_degree));
  if (p.stc_first && !p.arcsine_degree)
    fail(op, "the stc_first order needs an arcsine (arcsine_degree 3 or 5) to land the output's scale");
  if (p.double_angles < 0 || p.stc_levels < 1 || p.premultiplier < 1)
    fail(op, "double_angles must be >= 0, stc_levels >= 1 and premultiplier >= 1");
  for (double s : {p.input_scale, p.headroom, p.message_ratio, p.even_span})
    if (!(s > 0) || !std::isfinite(s)) fail(op, "scales, headroom, message_ratio and even_span must be positive");
  if (p.arcsine_degree && !(p.eval_mod_scale > 0)) fail(op, "eval_mod_scale must be positive with an arcsine");
  if (!p.stc_first && !(p.stc_input_scale > 0)) fail(op, "stc_input_scale must be positive in the classic order");
}

double BootExecutor::error_bound(double bound) const {
  return boot_error_bound(bound, plan_.message_ratio, plan_.arcsine_degree, plan_.noise_bound);
}

Ciphertext BootExecutor::bootstrap(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct, double bound,
                                   bool real_values) const {
  return BootRun<Ciphertext>(*this, ctx, keys).single(ct, bound, real_values);
}

DeviceCiphertext BootExecutor::bootstrap(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct,
                                         double bound, bool real_values) const {
  return BootRun<DeviceCiphertext>(*this, ctx, keys).single(ct, bound, real_values);
}

std::pair<Ciphertext, Ciphertext> BootExecutor::bootstrap_pair(const Tables& ctx, const KeyChain& keys,
                                                               const Ciphertext& a, const Ciphertext& b,
                                                               double bound_a, double bound_b) const {
  return BootRun<Ciphertext>(*this, ctx, keys).pair(a, b, bound_a, bound_b);
}

std::pair<DeviceCiphertext, DeviceCiphertext> BootExecutor::bootstrap_pair(const Tables& ctx, const KeyChain& keys,
                                                                           const DeviceCiphertext& a,
                                                                           const DeviceCiphertext& b, double bound_a,
                                                                           double bound_b) const {
  return BootRun<DeviceCiphertext>(*this, ctx, keys).pair(a, b, bound_a, bound_b);
}

std::vector<Ciphertext> BootExecutor::bootstrap_many(const Tables& ctx, const KeyChain& keys,
                                                     const std::vector<const Ciphertext*>& cts,
                                                     const std::vector<double>& bounds) const {
  return BootRun<Ciphertext>(*this, ctx, keys).many(cts, bounds);
}

std::vector<DeviceCiphertext> BootExecutor::bootstrap_many(const Tables& ctx, const KeyChain& keys,
                                                           const std::vector<const DeviceCiphertext*>& cts,
                                                           const std::vector<double>& bounds) const {
  return BootRun<DeviceCiphertext>(*this, ctx, keys).many(cts, bounds);
}

}  // namespace ht
