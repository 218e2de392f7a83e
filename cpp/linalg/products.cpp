#include "linalg/products.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "ckks/evaluator.hpp"
#include "core/error.hpp"
#include "core/galois.hpp"
#include "linalg/batch.hpp"
#include "linalg/ctops.hpp"
#include "linalg/rotator.hpp"
#include "runtime/parallel.hpp"

namespace ht::linalg {

namespace {
// Rounds grouped by their normalized outer step, in the order bilinear_sum works.
std::map<long, std::vector<size_t>> round_groups(long slots, const std::vector<BilinearRound>& rounds) {
  std::map<long, std::vector<size_t>> groups;
  for (size_t k = 0; k < rounds.size(); ++k) groups[normalize_step(rounds[k].outer, slots)].push_back(k);
  return groups;
}
}  // namespace

std::vector<long> bilinear_steps(long slots, const std::vector<BilinearRound>& rounds, bool chain_a, bool chain_b) {
  std::set<long> s;
  std::map<int, long> cur_a, cur_b;
  for (const auto& grp : round_groups(slots, rounds)) {
    if (grp.first) s.insert(grp.first);
    for (size_t k : grp.second) {
      const BilinearRound& r = rounds[k];
      std::set<int> as, bs;
      for (auto& t : r.terms) { as.insert(t.a); bs.insert(t.b); }
      for (int side = 0; side < 2; ++side) {
        const bool chain = side == 0 ? chain_a : chain_b;
        const long step = side == 0 ? r.a_step : r.b_step;
        auto& cur = side == 0 ? cur_a : cur_b;
        for (int it : side == 0 ? as : bs) {
          const long d = chain ? normalize_step(step - cur[it], static_cast<u64>(slots))
                               : normalize_step(step, static_cast<u64>(slots));
          if (d) s.insert(d);
          if (chain) cur[it] = step;
        }
      }
    }
  }
  return {s.begin(), s.end()};
}

namespace {

// acc[o] += sum over by_out[o] of rA[a] (x) rB[b] (degree 2), over `limbs` limbs.
// Host memory: one fused pass per output and limb.
void accumulate_products(const Tables& ctx, Ciphertext& acc, const Ciphertext& rA, const Ciphertext& rB,
                         const std::vector<std::vector<std::pair<int, int>>>& by_out, int limbs) {
  const u64 n = ctx.n();
  const int outputs = acc.batch;
  parallel_for(static_cast<size_t>(outputs) * limbs, [&](size_t idx) {
    const int i = static_cast<int>(idx % limbs), o = static_cast<int>(idx / limbs);
    if (by_out[o].empty()) return;
    const Modulus& m = ctx.modulus(i);
    const u64 q = m.value;
    u64* d0 = acc.limb(o, 0, i);
    u64* d1 = acc.limb(o, 1, i);
    u64* d2 = acc.limb(o, 2, i);
    for (auto& ab : by_out[o]) {
      const u64 *x0 = rA.limb(ab.first, 0, i), *x1 = rA.limb(ab.first, 1, i);
      const u64 *y0 = rB.limb(ab.second, 0, i), *y1 = rB.limb(ab.second, 1, i);
      for (u64 k2 = 0; k2 < n; ++k2) {
        d0[k2] = add_mod(d0[k2], mul_mod(x0[k2], y0[k2], m), q);
        d1[k2] = add_mod(d1[k2], add_mod(mul_mod(x0[k2], y1[k2], m), mul_mod(x1[k2], y0[k2], m), q), q);
        d2[k2] = add_mod(d2[k2], mul_mod(x1[k2], y1[k2], m), q);
      }
    }
  });
}

// The same as backend calls (element-wise products and sums mod q: the same residues).
void accumulate_products(const Tables& ctx, DeviceCiphertext& acc, const DeviceCiphertext& rA,
                         const DeviceCiphertext& rB, const std::vector<std::vector<std::pair<int, int>>>& by_out,
                         int limbs) {
  backend::Backend& be = acc.backend();
  const u64 n = ctx.n();
  std::vector<Modulus> m(limbs);
  for (int i = 0; i < limbs; ++i) m[i] = ctx.modulus(i);
  const size_t words = static_cast<size_t>(limbs) * n;
  backend::DeviceBuffer t = be.allocate(words), u = be.allocate(words);
  using E = backend::Elementwise;
  const auto lc = static_cast<std::size_t>(limbs);
  for (int o = 0; o < acc.batch; ++o)
    for (auto& ab : by_out[o]) {
      const u64 *x0 = rA.poly(ab.first, 0), *x1 = rA.poly(ab.first, 1);
      const u64 *y0 = rB.poly(ab.second, 0), *y1 = rB.poly(ab.second, 1);
      be.elementwise(E::mul, t.data(), x0, y0, m.data(), lc, n);
      be.elementwise(E::add, acc.poly(o, 0), acc.poly(o, 0), t.data(), m.data(), lc, n);
      be.elementwise(E::mul, t.data(), x0, y1, m.data(), lc, n);
      be.elementwise(E::mul, u.data(), x1, y0, m.data(), lc, n);
      be.elementwise(E::add, t.data(), t.data(), u.data(), m.data(), lc, n);
      be.elementwise(E::add, acc.poly(o, 1), acc.poly(o, 1), t.data(), m.data(), lc, n);
      be.elementwise(E::mul, t.data(), x1, y1, m.data(), lc, n);
      be.elementwise(E::add, acc.poly(o, 2), acc.poly(o, 2), t.data(), m.data(), lc, n);
    }
}

template <class Ct>
Ct bilinear_sum_impl(const Tables& ctx, const KeyChain& keys, const Ct& A0, const Ct& B0,
                     const std::vector<BilinearRound>& rounds, int outputs, Cost* cost, bool chain_a, bool chain_b) {
  const char* op = "multiply encrypted matrices";
  if (A0.context_id != ctx.id() || B0.context_id != ctx.id()) fail(op, "a ciphertext belongs to another context");
  if (A0.size != 2 || B0.size != 2) fail(op, "relinearize the operands first");
  if (&ops::backend_of(A0) != &ops::backend_of(B0))
    fail(op, "the operands live on different devices; move one with .to(device)");
  if (outputs < 1) fail(op, "no outputs");
  const int level = std::min(A0.level, B0.level);
  if (level < 1) fail(op, "an operand is at level 0 and no level is left to rescale the product");
  for (auto& r : rounds)
    for (auto& t : r.terms)
      if (t.out < 0 || t.out >= outputs || t.a < 0 || t.a >= A0.batch || t.b < 0 || t.b >= B0.batch)
        fail(op, "a product term names a missing ciphertext");
  require_rotation_keys(keys, bilinear_steps(static_cast<long>(ctx.slots()), rounds, chain_a, chain_b));
  Ct lowA, lowB;
  if (A0.level != level) lowA = ops::level_to(ctx, A0, level);
  if (B0.level != level) lowB = ops::level_to(ctx, B0, level);
  const Ct& A = A0.level == level ? A0 : lowA;
  const Ct& B = B0.level == level ? B0 : lowB;
  const int limbs = level + 1;
  BasicRotator<Ct> ra(ctx, keys, A, chain_a), rb(ctx, keys, B, chain_b);
  Cost c;
  std::vector<long> per_out(outputs, 0);
  const auto groups = round_groups(static_cast<long>(ctx.slots()), rounds);  // outer step -> rounds
  // Rotations that several rounds use (the baby steps of a giant-step loop)
  // are kept until their last use instead of being recomputed.
  std::map<std::tuple<int, int, long>, int> uses;  // (side, item, step) -> remaining uses
  for (auto& r : rounds) {
    std::set<int> as, bs;
    for (auto& t : r.terms) { as.insert(t.a); bs.insert(t.b); }
    for (int a : as) uses[{0, a, normalize_step(r.a_step, ctx.slots())}] += 1;
    for (int b : bs) uses[{1, b, normalize_step(r.b_step, ctx.slots())}] += 1;
  }
  std::map<std::tuple<int, int, long>, Ct> kept;
  // The items `items` of side `side` rotated by `step`, from the cache where possible.
  auto rotated = [&](int side, BasicRotator<Ct>& rot, const std::vector<int>& items, long step) {
    const long st = normalize_step(step, ctx.slots());
    std::vector<int> missing;
    for (int it : items)
      if (!kept.count({side, it, st})) missing.push_back(it);
    Ct fresh;
    if (!missing.empty()) fresh = rot.rotate(missing, step, &c);
    std::vector<std::pair<const Ct*, int>> parts;
    for (int it : items) {
      auto k = kept.find({side, it, st});
      if (k != kept.end()) {
        parts.push_back({&k->second, 0});
      } else {
        const int pos = static_cast<int>(std::find(missing.begin(), missing.end(), it) - missing.begin());
        parts.push_back({&fresh, pos});
      }
    }
    Ct out = parts.size() == missing.size() ? std::move(fresh) : assemble(ctx, parts);
    // keep the ones used again, drop the ones used for the last time
    for (size_t k = 0; k < items.size(); ++k) {
      const auto key = std::make_tuple(side, items[k], st);
      const int left = --uses[key];
      if (left > 0 && !kept.count(key)) kept.emplace(key, gather(ctx, out, {static_cast<int>(k)}));
      if (left <= 0) kept.erase(key);
    }
    return out;
  };
  std::optional<Ct> total;
  for (const auto& grp : groups) {
    Ct acc = ops::make_like(ctx, A, outputs, 3, level, A.scale * B.scale, true);
    for (size_t k : grp.second) {
      const BilinearRound& r = rounds[k];
      if (r.terms.empty()) continue;
      std::set<int> as, bs;
      for (auto& t : r.terms) { as.insert(t.a); bs.insert(t.b); }
      const std::vector<int> av(as.begin(), as.end()), bv(bs.begin(), bs.end());
      const Ct rA = rotated(0, ra, av, r.a_step);
      const Ct rB = rotated(1, rb, bv, r.b_step);
      std::vector<std::vector<std::pair<int, int>>> by_out(outputs);
      for (auto& t : r.terms) {
        const int ai = static_cast<int>(std::lower_bound(av.begin(), av.end(), t.a) - av.begin());
        const int bi = static_cast<int>(std::lower_bound(bv.begin(), bv.end(), t.b) - bv.begin());
        by_out[t.out].push_back({ai, bi});
        per_out[t.out] += 1;
      }
      accumulate_products(ctx, acc, rA, rB, by_out, limbs);
      c.tensor_products += static_cast<long>(r.terms.size());
    }
    acc.bound = 0;
    Ct rel = ops::relinearize(ctx, keys, acc);
    c.relinearizations += outputs;
    rel.bound = 0;
    if (grp.first != 0) {
      rel = ops::rotate(ctx, keys, rel, grp.first);
      c.rotations += outputs;
    }
    rel.bound = 0;
    if (total) total = ops::add(ctx, *total, rel);
    else total = std::move(rel);
  }
  if (!total) total = ops::make_like(ctx, A, outputs, 2, level, A.scale * B.scale, true);
  total->bound = 0;
  Ct out = ops::rescale(ctx, *total);
  c.rescales += outputs;
  if (std::fabs(out.scale / ctx.scale_at(out.level) - 1) > 1e-6)
    fail(op, "internal scale mismatch after the product; the operands were not at canonical scales");
  out.scale = ctx.scale_at(out.level);
  const long most = *std::max_element(per_out.begin(), per_out.end());
  out.bound = A.bound * B.bound * static_cast<double>(std::max(1L, most));
  if (cost) cost->add(c);
  return out;
}

template <class Ct>
Ct rotate_sum_impl(const Tables& ctx, const KeyChain& keys, const Ct& x, const std::vector<long>& steps, Cost* cost) {
  require_rotation_keys(keys, steps);
  Ct acc = gather(ctx, x, [&] {
    std::vector<int> all(x.batch);
    for (int b = 0; b < x.batch; ++b) all[b] = b;
    return all;
  }());
  for (long s : steps) {
    if (normalize_step(s, ctx.slots()) == 0) {
      acc = ops::add(ctx, acc, acc);
      continue;
    }
    acc = ops::add(ctx, acc, ops::rotate(ctx, keys, acc, s));
    if (cost) cost->rotations += acc.batch;
  }
  return acc;
}

}  // namespace

Ciphertext bilinear_sum(const Tables& ctx, const KeyChain& keys, const Ciphertext& A, const Ciphertext& B,
                        const std::vector<BilinearRound>& rounds, int outputs, Cost* cost, bool chain_a,
                        bool chain_b) {
  return bilinear_sum_impl(ctx, keys, A, B, rounds, outputs, cost, chain_a, chain_b);
}
DeviceCiphertext bilinear_sum(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& A,
                              const DeviceCiphertext& B, const std::vector<BilinearRound>& rounds, int outputs,
                              Cost* cost, bool chain_a, bool chain_b) {
  return bilinear_sum_impl(ctx, keys, A, B, rounds, outputs, cost, chain_a, chain_b);
}
Ciphertext rotate_sum(const Tables& ctx, const KeyChain& keys, const Ciphertext& x, const std::vector<long>& steps,
                      Cost* cost) {
  return rotate_sum_impl(ctx, keys, x, steps, cost);
}
DeviceCiphertext rotate_sum(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& x,
                            const std::vector<long>& steps, Cost* cost) {
  return rotate_sum_impl(ctx, keys, x, steps, cost);
}

}  // namespace ht::linalg
