#include "circuits/lintrans.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "backend/kernels/elementwise.hpp"
#include "ckks/evaluator.hpp"
#include "core/error.hpp"
#include "core/galois.hpp"
#include "runtime/parallel.hpp"

namespace ht {

std::vector<long> LinearTransform::rotation_steps() const {
  std::set<long> s;
  for (long j : babies) if (j) s.insert(j);
  for (long g : giants) if (g) s.insert(g);
  return {s.begin(), s.end()};
}

int LinearTransform::diagonals() const {
  int c = 0;
  for (auto& g : groups) c += static_cast<int>(g.size());
  return c;
}

namespace {
// Rotations needed by a baby step n1 for the diagonal set.
size_t rotations_for(const std::vector<long>& diags, long n1, long slots) {
  std::set<long> b, g;
  for (long d : diags) {
    b.insert(d % n1);
    g.insert(d - d % n1);
  }
  b.erase(0);
  g.erase(0);
  (void)slots;
  return b.size() + g.size();
}
}  // namespace

LinearTransform encode_linear_transform(const Encoder& encoder,
                                        const std::map<long, std::vector<std::complex<double>>>& diagonals,
                                        int level, long n1, double input_scale) {
  const Context& ctx = encoder.context();
  const long slots = static_cast<long>(ctx.slots());
  if (diagonals.empty()) fail("encode a linear transform", "no diagonals given");
  if (level < 1 || level > ctx.max_level()) fail("encode a linear transform", "level must be in [1, max_level]");
  std::vector<long> diags;
  for (auto& kv : diagonals) {
    const long d = normalize_step(kv.first, ctx.slots());
    if (kv.second.size() != static_cast<size_t>(slots))
      fail("encode a linear transform", "every diagonal needs " + std::to_string(slots) + " values");
    diags.push_back(d);
  }
  std::sort(diags.begin(), diags.end());
  if (std::adjacent_find(diags.begin(), diags.end()) != diags.end())
    fail("encode a linear transform", "two diagonals map to the same rotation step");
  if (n1 <= 0) {
    size_t best = ~size_t(0);
    for (long c = 1; c <= slots; c <<= 1) {
      const size_t r = rotations_for(diags, c, slots);
      if (r < best) { best = r; n1 = c; }
    }
  }
  LinearTransform lt;
  lt.level = level;
  lt.n1 = n1;
  std::vector<double> row_sum(slots, 0.0);
  std::map<long, std::vector<std::pair<long, long>>> by_giant;  // g -> (j, d)
  for (auto& kv : diagonals) {
    const long d = normalize_step(kv.first, ctx.slots());
    by_giant[d - d % n1].push_back({d % n1, kv.first});
    for (long i = 0; i < slots; ++i) row_sum[i] += std::abs(kv.second[i]);
  }
  lt.norm_inf = *std::max_element(row_sum.begin(), row_sum.end());
  std::set<long> babies;
  for (auto& kv : by_giant)
    for (auto& jd : kv.second) babies.insert(jd.first);
  lt.babies.assign(babies.begin(), babies.end());
  lt.input_scale = input_scale > 0 ? input_scale : ctx.scale_at(level);
  const double pscale = ctx.scale_at(level - 1) * (static_cast<double>(ctx.prime(level)) / lt.input_scale);
  std::vector<std::complex<double>> rotated(slots);
  for (auto& kv : by_giant) {
    const long g = kv.first;
    lt.giants.push_back(g);
    std::vector<std::pair<int, Plaintext>> group;
    for (auto& jd : kv.second) {
      const auto& diag = diagonals.at(jd.second);
      // rot_{-g}(diag)[i] = diag[(i - g) mod slots]
      for (long i = 0; i < slots; ++i) rotated[i] = diag[((i - g) % slots + slots) % slots];
      const int bi = static_cast<int>(std::lower_bound(lt.babies.begin(), lt.babies.end(), jd.first) - lt.babies.begin());
      group.emplace_back(bi, encoder.encode(rotated.data(), 1, slots, level, pscale));
    }
    lt.groups.push_back(std::move(group));
  }
  return lt;
}

Ciphertext apply_linear_transform(const Context& ctx, const KeyChain& keys, const Ciphertext& in,
                                  const LinearTransform& lt) {
  const char* op = "apply a linear transform";
  if (in.context_id != ctx.id()) fail(op, "the ciphertext belongs to another context");
  if (in.size != 2) fail(op, "relinearize the ciphertext first");
  if (in.level < lt.level)
    fail(op, "the ciphertext is at level " + std::to_string(in.level) + " but the transform was encoded for level " +
                 std::to_string(lt.level) + "; encode it for a lower level");
  require_rotation_keys(keys, lt.rotation_steps());
  const Ciphertext ct = in.level == lt.level ? in : level_to(ctx, in, lt.level);
  if (std::fabs(ct.scale / lt.input_scale - 1) > 1e-9)
    fail(op, "the ciphertext's scale differs from the one the transform was encoded for");
  const u64 n = ctx.n();
  const int level = lt.level, limbs = level + 1;
  const std::vector<Ciphertext> baby = rotate_hoisted(ctx, keys, ct, lt.babies);
  const double pscale = lt.groups.front().front().second.scale;
  Ciphertext total(n, ct.batch, 2, level, ct.scale * pscale, ctx.id());
  for (size_t gi = 0; gi < lt.giants.size(); ++gi) {
    Ciphertext acc(n, ct.batch, 2, level, ct.scale * pscale, ctx.id());
    // acc = sum_j pt_j * baby_j, coefficient-wise in the NTT domain.
    parallel_for(static_cast<size_t>(ct.batch) * 2 * limbs, [&](size_t idx) {
      const int i = static_cast<int>(idx % limbs);
      const int k = static_cast<int>((idx / limbs) % 2);
      const int b = static_cast<int>(idx / (2 * limbs));
      const Modulus& m = ctx.modulus(i);
      u64* o = acc.limb(b, k, i);
      for (const auto& term : lt.groups[gi]) {
        const u64* x = baby[term.first].limb(b, k, i);
        const u64* p = term.second.limb(0, 0, i);
        for (u64 t = 0; t < n; ++t) kernels::mul_add_limb(o, x, p, m, t);
      }
    });
    const Ciphertext moved = lt.giants[gi] == 0 ? std::move(acc) : rotate(ctx, keys, acc, lt.giants[gi]);
    parallel_for(static_cast<size_t>(ct.batch) * 2 * limbs, [&](size_t idx) {
      const int i = static_cast<int>(idx % limbs);
      const u64 q = ctx.prime(i);
      u64* o = total.data.data() + idx * n;
      const u64* x = moved.data.data() + idx * n;
      for (u64 t = 0; t < n; ++t) kernels::add_limb(o, o, x, q, t);
    });
  }
  total.bound = 0;  // the intermediate sum is not a value at a canonical scale
  Ciphertext out = rescale(ctx, total);
  out.scale = ctx.scale_at(out.level);
  out.bound = in.bound * lt.norm_inf;
  return out;
}

}  // namespace ht
