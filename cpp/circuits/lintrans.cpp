#include "circuits/lintrans.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <string>

#include "ckks/evaluator.hpp"
#include "core/error.hpp"
#include "core/galois.hpp"

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
// Relative cost of a baby step n1 for the diagonal set under double hoisting:
// a baby rotation is one inner product in Q*P (no ModUp, no ModDown), about a
// quarter of a giant one (ModDown, ModUp, inner product). Babies are held in
// Q*P at once, so their count is capped (32 at N = 2^16 is ~1 GiB).
double bsgs_cost(const std::vector<long>& diags, long n1) {
  std::set<long> b, g;
  for (long d : diags) {
    b.insert(d % n1);
    g.insert(d - d % n1);
  }
  b.erase(0);
  g.erase(0);
  if (b.size() > 32) return 1e300;
  return 0.25 * static_cast<double>(b.size()) + static_cast<double>(g.size());
}
}  // namespace

LinearTransform encode_linear_transform(const Encoder& encoder,
                                        const std::map<long, std::vector<std::complex<double>>>& diagonals,
                                        int level, long n1, double input_scale, bool extended) {
  const Tables& ctx = encoder.tables();
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
    double best = 1e301;
    for (long c = 1; c <= slots; c <<= 1) {
      const double r = bsgs_cost(diags, c);
      if (r < best) { best = r; n1 = c; }
    }
  }
  LinearTransform lt;
  lt.level = level;
  lt.extended = extended;
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
      group.emplace_back(bi, extended ? encoder.encode_extended(rotated.data(), slots, level, pscale)
                                      : encoder.encode(rotated.data(), 1, slots, level, pscale));
    }
    lt.groups.push_back(std::move(group));
  }
  return lt;
}

std::vector<const u64*> LinearTransform::diagonal_data(backend::Backend& be) const {
  std::vector<const u64*> out;
  if (be.device().kind == backend::DeviceKind::cpu) {
    for (const auto& group : groups)
      for (const auto& term : group) out.push_back(term.second.data.data());
    return out;
  }
  std::vector<std::pair<const u64*, std::size_t>> parts;
  for (const auto& group : groups)
    for (const auto& term : group) parts.push_back({term.second.data.data(), term.second.data.size()});
  const u64* at = device->get(be, parts);
  for (const auto& p : parts) {
    out.push_back(at);
    at += p.second;
  }
  return out;
}

std::size_t LinearTransform::device_bytes() const { return device->bytes(); }

bsgs::Plan LinearTransform::plan() const {
  bsgs::Plan p;
  p.slots = 0;
  p.n1 = n1;
  p.babies = {babies};
  p.outputs.resize(1);
  long id = 0;
  for (size_t g = 0; g < giants.size(); ++g) {
    bsgs::Giant giant{giants[g], {}};
    for (const auto& term : groups[g]) giant.terms.push_back({0, term.first, id++});
    p.outputs[0].push_back(std::move(giant));
  }
  return p;
}

namespace {

// A transform's diagonals, all giants at once (they are always encoded).
struct TransformDiagonals : bsgs::DiagonalStore {
  std::vector<const u64*> all;
  std::vector<std::size_t> start;  // per giant: index of its first term; one past the end last
  TransformDiagonals(const LinearTransform& lt, backend::Backend& be) : all(lt.diagonal_data(be)) {
    start.push_back(0);
    for (const auto& g : lt.groups) start.push_back(start.back() + g.size());
  }
  // One giant sum at a time: a bootstrap transform has up to ~16 giants of
  // two Q*P polynomials each, and holding them all at once raised the n16-boot
  // keygen + bootstrap peak past 8 GB; the sums are added into the total in
  // the same order either way, so the result is the same words.
  int window() const override { return 1; }
  std::vector<const u64*> fetch(backend::Backend&, int, int g0, int g1) override {
    return {all.begin() + static_cast<long>(start[g0]), all.begin() + static_cast<long>(start[g1])};
  }
};

// One batch item at a time (the babies of one ciphertext are what is held).
template <class Ct>
void run_transform(backend::Backend& be, const Tables& ctx, const KeyChain& keys, const LinearTransform& lt,
                   const Ct& ct, Ct& out, bool host) {
  bsgs::Plan plan = lt.plan();
  plan.slots = static_cast<long>(ctx.slots());
  TransformDiagonals diagonals(lt, be);
  for (int b = 0; b < ct.batch; ++b)
    bsgs::apply(be, ctx, keys, plan, diagonals, lt.level, lt.extended, host, {{ct.poly(b, 0), ct.poly(b, 1)}},
                {{out.poly(b, 0), out.poly(b, 1)}});
}

const char* kOp = "apply a linear transform";

void check_input(const Tables& ctx, const KeyChain& keys, u64 context_id, int size, int level,
                 const LinearTransform& lt) {
  if (context_id != ctx.id()) fail(kOp, "the ciphertext belongs to another context");
  if (&keys.tables() != &ctx) fail(kOp, "the keys belong to another context");
  if (size != 2) fail(kOp, "relinearize the ciphertext first");
  if (lt.level < 1 || lt.level > ctx.max_level() || lt.groups.size() != lt.giants.size())
    fail(kOp, "the transform was not encoded for this context");
  if (level < lt.level)
    fail(kOp, "the ciphertext is at level " + std::to_string(level) + " but the transform was encoded for level " +
                  std::to_string(lt.level) + "; encode it for a lower level");
  require_rotation_keys(keys, lt.rotation_steps());
}

void check_scale(double scale, const LinearTransform& lt) {
  if (std::fabs(scale / lt.input_scale - 1) > 1e-9)
    fail(kOp, "the ciphertext's scale differs from the one the transform was encoded for");
}

}  // namespace

Ciphertext apply_linear_transform(const Tables& ctx, const KeyChain& keys, const Ciphertext& in,
                                  const LinearTransform& lt) {
  check_input(ctx, keys, in.context_id, in.size, in.level, lt);
  const Ciphertext ct = in.level == lt.level ? in : level_to(ctx, in, lt.level);
  check_scale(ct.scale, lt);
  Ciphertext out(ctx.n(), ct.batch, 2, lt.level - 1, 1.0, ctx.id(), false, false);
  run_transform(backend::cpu(), ctx, keys, lt, ct, out, true);
  out.scale = ctx.scale_at(out.level);
  out.bound = in.bound * lt.norm_inf;
  return out;
}

namespace resident {

DeviceCiphertext apply_linear_transform(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& in,
                                        const LinearTransform& lt) {
  check_input(ctx, keys, in.context_id, in.size, in.level, lt);
  DeviceCiphertext lowered;
  if (in.level != lt.level) lowered = level_to(ctx, in, lt.level);
  const DeviceCiphertext& ct = in.level == lt.level ? in : lowered;
  check_scale(ct.scale, lt);
  backend::Backend& be = ct.backend();
  DeviceCiphertext out = make_batch(ctx, be, ct.batch, 2, lt.level - 1, 1.0, false);
  // The backend's own product (the one a GPU runs), also on the CPU backend.
  run_transform(be, ctx, keys, lt, ct, out, false);
  out.scale = ctx.scale_at(out.level);
  out.bound = in.bound * lt.norm_inf;
  return out;
}

}  // namespace resident
}  // namespace ht
