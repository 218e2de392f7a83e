#include "linalg/blockmap.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "backend/backend.hpp"
#include "backend/kernels/elementwise.hpp"
#include "ckks/evaluator.hpp"
#include "core/error.hpp"
#include "core/galois.hpp"
#include "linalg/batch.hpp"
#include "runtime/parallel.hpp"

namespace ht::linalg {

long MapPlan::diagonals() const {
  long c = 0;
  for (auto& o : outputs)
    for (auto& g : o) c += static_cast<long>(g.terms.size());
  return c;
}

std::vector<long> MapPlan::rotation_steps() const {
  std::set<long> s;
  for (auto& b : babies)
    for (long x : b) if (x) s.insert(x);
  for (auto& o : outputs)
    for (auto& g : o) if (g.step) s.insert(g.step);
  return {s.begin(), s.end()};
}

Cost MapPlan::predicted(long groups) const {
  Cost c;
  for (auto& b : babies) {
    const long nz = static_cast<long>(std::count_if(b.begin(), b.end(), [](long x) { return x != 0; }));
    c.rotations += nz * groups;
    if (nz > 1) c.hoisted += (nz - 1) * groups;
    if (nz) c.decompositions += groups;
  }
  for (auto& o : outputs)
    for (auto& g : o) if (g.step) c.rotations += groups;
  c.plain_mults = diagonals() * groups;
  c.rescales = out_cts * groups;
  return c;
}

namespace {
// Weighted rotation count of a baby step n1: a hoisted baby rotation counts
// 0.6 of a full (giant) rotation.
double plan_weight(const std::vector<std::array<long, 3>>& diags, int in_cts, int out_cts, long n1,
                   std::vector<std::vector<long>>& b, std::vector<std::vector<long>>& g) {
  for (auto& v : b) v.clear();
  for (auto& v : g) v.clear();
  for (auto& d : diags) {
    b[d[1]].push_back(d[2] % n1);
    g[d[0]].push_back(d[2] - d[2] % n1);
  }
  double w = 0;
  auto distinct_nonzero = [](std::vector<long>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return static_cast<double>(v.size()) - (!v.empty() && v.front() == 0 ? 1 : 0);
  };
  for (auto& v : b) w += 0.6 * distinct_nonzero(v);
  for (auto& v : g) w += distinct_nonzero(v);
  return w;
}

// Baby steps worth trying: powers of two, every value up to 256, and a few
// multiples of them (steps that are combinations like 63 j + 64 e are split
// well by a baby step that is not a power of two).
std::vector<long> n1_candidates(long slots, size_t diags, const std::vector<std::array<long, 3>>& steps) {
  std::set<long> c;
  // Steps in arithmetic progression (u * d, negative ones wrapping to slots - u * d)
  // split best at a multiple of the stride: try the smallest steps either side of 0.
  long lo = slots, hi = 0;
  for (auto& d : steps)
    if (d[2]) { lo = std::min(lo, d[2]); hi = std::max(hi, d[2]); }
  for (long base : {lo, slots - hi})
    if (base > 0 && base < slots)
      for (long f = 1; f <= 256 && base * f <= slots; f <<= 1) c.insert(base * f);
  for (long v = 1; v <= slots; v <<= 1) c.insert(v);
  const long small = diags > 4000 ? 32 : diags > 1000 ? 96 : 256;
  const long mult = diags > 4000 ? 8 : diags > 1000 ? 24 : 64;
  for (long v = 1; v <= std::min(slots, small); ++v) c.insert(v);
  for (long v = 1; v <= mult; ++v)
    for (long f = 2; f <= 64; f <<= 1)
      if (v * f <= slots) c.insert(v * f);
  return {c.begin(), c.end()};
}
}  // namespace

MapPlan plan_map(long slots, int in_cts, int out_cts, const std::vector<std::array<long, 3>>& diags0, long n1) {
  const char* op = "plan a block linear map";
  if (slots <= 0 || (slots & (slots - 1))) fail(op, "slots must be a power of two");
  if (in_cts < 1 || out_cts < 1) fail(op, "needs at least one input and one output ciphertext");
  std::vector<std::array<long, 3>> diags = diags0;
  for (auto& d : diags) {
    if (d[0] < 0 || d[0] >= out_cts || d[1] < 0 || d[1] >= in_cts) fail(op, "a diagonal names a missing ciphertext");
    d[2] = ((d[2] % slots) + slots) % slots;
  }
  MapPlan p;
  p.slots = slots;
  p.in_cts = in_cts;
  p.out_cts = out_cts;
  if (n1 <= 0) {
    double best = 1e300;
    std::vector<std::vector<long>> b(in_cts), g(out_cts);
    for (long c : n1_candidates(slots, diags.size(), diags)) {
      const double w = plan_weight(diags, in_cts, out_cts, c, b, g);
      if (w < best - 1e-9) { best = w; n1 = c; }
    }
  }
  if (n1 <= 0 || n1 > slots) fail(op, "the baby step must be in [1, slots]");
  p.n1 = n1;
  std::vector<std::set<long>> bset(in_cts);
  for (auto& d : diags) bset[d[1]].insert(d[2] % n1);
  p.babies.resize(in_cts);
  for (int i = 0; i < in_cts; ++i) p.babies[i].assign(bset[i].begin(), bset[i].end());
  std::vector<std::map<long, std::vector<MapPlan::Term>>> by_giant(out_cts);
  for (size_t id = 0; id < diags.size(); ++id) {
    const auto& d = diags[id];
    const long baby = d[2] % n1, giant = d[2] - baby;
    const auto& bs = p.babies[d[1]];
    const int bi = static_cast<int>(std::lower_bound(bs.begin(), bs.end(), baby) - bs.begin());
    by_giant[d[0]][giant].push_back({static_cast<int>(d[1]), bi, static_cast<long>(id)});
  }
  p.outputs.resize(out_cts);
  for (int o = 0; o < out_cts; ++o)
    for (auto& kv : by_giant[o]) p.outputs[o].push_back({kv.first, std::move(kv.second)});
  return p;
}

size_t BlockMap::bytes() const {
  size_t b = 0;
  for (auto& c : chunks) b += c.data.bytes();
  return b;
}

BlockMap make_block_map(MapPlan plan, std::shared_ptr<const DiagSource> source) {
  BlockMap m;
  m.plan = std::move(plan);
  m.source = std::move(source);
  if (m.source) m.plan.norm_inf = m.source->norm_inf;
  return m;
}

namespace {
constexpr int kChunk = 16;

// The pre-rotated diagonal of a term: rot_{-giant}(diag)[s] = diag[(s - giant) mod slots].
void term_values(const BlockMap& map, long diag, long giant, cplx* out, std::vector<cplx>& tmp) {
  const long slots = map.plan.slots;
  tmp.resize(slots);
  map.source->values(diag, tmp.data());
  for (long s = 0; s < slots; ++s) out[s] = tmp[((s - giant) % slots + slots) % slots];
}

// Encodes the diagonals `ids` (with their giants) as one batched plaintext.
Plaintext encode_terms(const Encoder& enc, const BlockMap& map, const std::vector<std::pair<long, long>>& ids,
                       int level) {
  const long slots = map.plan.slots;
  std::vector<cplx> vals(static_cast<size_t>(ids.size()) * slots);
  parallel_for(ids.size(), [&](size_t k) {
    std::vector<cplx> tmp;
    term_values(map, ids[k].first, ids[k].second, vals.data() + k * slots, tmp);
  });
  return enc.encode(vals.data(), static_cast<int>(ids.size()), static_cast<u64>(slots), level,
                    plain_mul_scale(enc.tables(), level));
}
}  // namespace

void encode_block_map(const Encoder& encoder, BlockMap& map, int level, bool cache) {
  const Tables& ctx = encoder.tables();
  if (level < 1 || level > ctx.max_level()) fail("encode a block linear map", "level must be in [1, max_level]");
  if (map.plan.slots != static_cast<long>(ctx.slots()))
    fail("encode a block linear map", "the map was planned for another number of slots");
  map.level = level;
  map.chunks.clear();
  map.where.assign(map.source ? static_cast<size_t>(map.plan.diagonals()) : 0, {-1, -1});
  if (!cache) return;
  std::vector<std::pair<long, long>> all;  // (diag, giant)
  for (auto& o : map.plan.outputs)
    for (auto& g : o)
      for (auto& t : g.terms) all.push_back({t.diag, g.step});
  long maxid = 0;
  for (auto& a : all) maxid = std::max(maxid, a.first + 1);
  map.where.assign(maxid, {-1, -1});
  for (size_t s = 0; s < all.size(); s += kChunk) {
    std::vector<std::pair<long, long>> part(all.begin() + s, all.begin() + std::min(all.size(), s + kChunk));
    map.chunks.push_back(encode_terms(encoder, map, part, level));
    for (size_t k = 0; k < part.size(); ++k)
      map.where[part[k].first] = {static_cast<int>(map.chunks.size() - 1), static_cast<int>(k)};
  }
}

namespace {
// acc (+)= sum_t pts[t] row rows[t] (.) xs[t], both polynomials of every batch item: a lazily
// reduced dot product (backend key_switch_dot) in chunks of 32 terms so 128-bit sums cannot
// overflow. `overwrite`: acc's data is not read (the first sum writes it).
void dot_into(const Tables& ctx, Ciphertext& acc, const std::vector<const Plaintext*>& pts,
              const std::vector<int>& rows, const std::vector<const Ciphertext*>& xs, bool overwrite) {
  const int limbs = acc.level + 1;
  const u64 n = ctx.n();
  parallel_for(static_cast<size_t>(acc.batch) * limbs, [&](size_t idx) {
    const int i = static_cast<int>(idx % limbs);
    const int b = static_cast<int>(idx / limbs);
    const Modulus& m = ctx.modulus(i);
    u64* o0 = acc.limb(b, 0, i);
    u64* o1 = acc.limb(b, 1, i);
    std::vector<const u64*> d, x0, x1;
    std::vector<u64> t0, t1;
    constexpr size_t kTerms = 32;
    for (size_t s0 = 0; s0 < pts.size(); s0 += kTerms) {
      const size_t e = std::min(pts.size(), s0 + kTerms);
      d.clear(); x0.clear(); x1.clear();
      for (size_t t = s0; t < e; ++t) {
        d.push_back(pts[t]->limb(rows[t], 0, i));
        x0.push_back(xs[t]->limb(b, 0, i));
        x1.push_back(xs[t]->limb(b, 1, i));
      }
      if (s0 == 0 && overwrite) {
        backend::cpu().key_switch_dot(o0, o1, d.data(), x0.data(), x1.data(), static_cast<int>(d.size()), n, m);
      } else {
        t0.resize(n); t1.resize(n);
        backend::cpu().key_switch_dot(t0.data(), t1.data(), d.data(), x0.data(), x1.data(), static_cast<int>(d.size()), n, m);
        for (u64 k = 0; k < n; ++k) {
          o0[k] = add_mod(o0[k], t0[k], m.value);
          o1[k] = add_mod(o1[k], t1[k], m.value);
        }
      }
    }
  });
}

// The plaintexts of `terms` of a giant group at `step`: rows of the cached chunks, or encoded
// now into `local` (streamed maps; counted in c.encodes).
void term_plaintexts(const Encoder& encoder, const BlockMap& map, const std::vector<const MapPlan::Term*>& terms,
                     long step, int level, std::vector<Plaintext>& local, std::vector<const Plaintext*>& pts,
                     std::vector<int>& rows, Cost& c) {
  pts.assign(terms.size(), nullptr);
  rows.assign(terms.size(), 0);
  local.clear();
  if (map.cached()) {
    for (size_t k = 0; k < terms.size(); ++k) {
      const auto w = map.where[terms[k]->diag];
      pts[k] = &map.chunks[w.first];
      rows[k] = w.second;
    }
    return;
  }
  local.reserve((terms.size() + kChunk - 1) / kChunk);
  for (size_t s = 0; s < terms.size(); s += kChunk) {
    std::vector<std::pair<long, long>> part;
    for (size_t k = s; k < std::min(terms.size(), s + kChunk); ++k) part.push_back({terms[k]->diag, step});
    local.push_back(encode_terms(encoder, map, part, level));
    c.encodes += static_cast<long>(part.size());
  }
  for (size_t k = 0; k < terms.size(); ++k) {
    pts[k] = &local[k / kChunk];
    rows[k] = static_cast<int>(k % kChunk);
  }
}

// total += rot(acc, step) (acc consumed).
void add_giant(const Tables& ctx, const KeyChain& keys, Ciphertext& total, Ciphertext&& acc, long step, Cost& c) {
  const int limbs = total.level + 1;
  const u64 n = ctx.n();
  acc.bound = 0;
  const Ciphertext moved = step == 0 ? std::move(acc) : rotate(ctx, keys, acc, step);
  if (step) c.rotations += total.batch;
  parallel_for(static_cast<size_t>(total.batch) * 2 * limbs, [&](size_t idx) {
    const int i = static_cast<int>(idx % limbs);
    const u64 q = ctx.prime(i);
    u64* o2 = total.data.data() + idx * n;
    const u64* x = moved.data.data() + idx * n;
    for (u64 s = 0; s < n; ++s) kernels::add_limb(o2, o2, x, q, s);
  });
}

// Baby rotations `steps` of input xi (one decomposition), with their counts.
std::vector<Ciphertext> babies_of(const Tables& ctx, const KeyChain& keys, const Ciphertext& xi,
                                  const std::vector<long>& steps, Cost& c) {
  const long nz = static_cast<long>(std::count_if(steps.begin(), steps.end(), [](long s) { return s != 0; }));
  c.rotations += nz * xi.batch;
  if (nz > 1) c.hoisted += (nz - 1) * xi.batch;
  if (nz) c.decompositions += xi.batch;
  return rotate_hoisted(ctx, keys, xi, steps);
}

// Groups of outputs whose accumulators (one per giant group) are held at once, at most `cap`
// per group where possible: outputs that read the same inputs go together, so an input's baby
// rotations are made for as few groups as possible.
std::vector<std::vector<int>> output_groups(const MapPlan& p, size_t cap) {
  std::vector<std::vector<int>> reads(p.out_cts);
  for (int o = 0; o < p.out_cts; ++o) {
    std::set<int> s;
    for (auto& g : p.outputs[o])
      for (auto& t : g.terms) s.insert(t.in);
    reads[o].assign(s.begin(), s.end());
  }
  std::vector<int> order(p.out_cts);
  for (int o = 0; o < p.out_cts; ++o) order[o] = o;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return reads[a] < reads[b]; });
  std::vector<std::vector<int>> groups;
  size_t held = 0;
  for (size_t k = 0; k < order.size();) {
    size_t e = k, accs = 0;  // the class of outputs reading the same inputs
    while (e < order.size() && reads[order[e]] == reads[order[k]]) accs += p.outputs[order[e++]].size();
    if (accs <= cap) {  // the whole class: with the group being filled, or a new one
      if (groups.empty() || held + accs > cap) { groups.emplace_back(); held = 0; }
      groups.back().insert(groups.back().end(), order.begin() + k, order.begin() + e);
      held += accs;
    } else {  // split the class into near-equal parts (their babies are made once per part)
      const size_t parts = (accs + cap - 1) / cap, count = e - k;
      for (size_t j = 0; j < parts; ++j) {
        const size_t a = k + j * count / parts, b = k + (j + 1) * count / parts;
        if (a < b) groups.emplace_back(order.begin() + a, order.begin() + b);
      }
      held = cap + 1;  // nothing joins a split class's last part
    }
    k = e;
  }
  return groups;
}
}  // namespace

Ciphertext apply_block_map(const Tables& ctx, const KeyChain& keys, const Encoder& encoder, const Ciphertext& in,
                           const BlockMap& map, int inner_groups, Cost* cost) {
  const char* op = "apply a block linear map";
  const MapPlan& p = map.plan;
  if (in.context_id != ctx.id()) fail(op, "the ciphertext belongs to another context");
  if (in.size != 2) fail(op, "relinearize the ciphertext first");
  if (map.level < 1) fail(op, "the map is not encoded yet");
  if (p.slots != static_cast<long>(ctx.slots())) fail(op, "the map was planned for another context");
  if (inner_groups < 1 || in.batch % (p.in_cts * inner_groups) != 0)
    fail(op, "the batch of " + std::to_string(in.batch) + " ciphertexts is not a multiple of " +
                 std::to_string(p.in_cts) + " inputs x " + std::to_string(inner_groups) + " groups");
  if (in.level < map.level)
    fail(op, "the ciphertext is at level " + std::to_string(in.level) + " but the map was encoded for level " +
                 std::to_string(map.level));
  require_rotation_keys(keys, p.rotation_steps());
  const Ciphertext ct = in.level == map.level ? in : level_to(ctx, in, map.level);
  const int G = inner_groups, H = in.batch / (p.in_cts * G), HG = H * G;
  const int level = map.level;
  const u64 n = ctx.n();
  const double pscale = plain_mul_scale(ctx, level);
  Cost c;
  auto input = [&](int i) {  // input i of every group: a batch of H * G ciphertexts
    std::vector<int> idx;
    for (int h = 0; h < H; ++h)
      for (int g = 0; g < G; ++g) idx.push_back((h * p.in_cts + i) * G + g);
    return gather(ctx, ct, idx);
  };
  auto finish = [&](Ciphertext& total) {
    total.bound = 0;
    Ciphertext r = rescale(ctx, total);
    r.scale = ctx.scale_at(r.level);
    r.bound = in.bound * p.norm_inf;
    c.rescales += HG;
    return r;
  };
  const size_t ct_bytes = sizeof(u64) * 2 * static_cast<size_t>(level + 1) * n * HG;
  size_t babies = 0;
  for (auto& b : p.babies) babies += b.size();
  std::vector<Ciphertext> outs(p.out_cts);
  std::vector<Plaintext> local;
  std::vector<const Plaintext*> pts;
  std::vector<int> rows;
  std::vector<const Ciphertext*> xs;
  std::vector<const MapPlan::Term*> terms;
  if (map.work_bytes == 0 || (babies + 3) * ct_bytes <= map.work_bytes) {
    // Every input's baby rotations at once (hoisted), then each output giant group by giant group.
    std::vector<std::vector<Ciphertext>> baby(p.in_cts);
    for (int i = 0; i < p.in_cts; ++i)
      if (!p.babies[i].empty()) baby[i] = babies_of(ctx, keys, input(i), p.babies[i], c);
    for (int o = 0; o < p.out_cts; ++o) {
      Ciphertext total(n, HG, 2, level, ct.scale * pscale, ctx.id());
      for (const auto& giant : p.outputs[o]) {
        terms.clear(); xs.clear();
        for (auto& t : giant.terms) { terms.push_back(&t); xs.push_back(&baby[t.in][t.baby]); }
        term_plaintexts(encoder, map, terms, giant.step, level, local, pts, rows, c);
        Ciphertext acc(n, HG, 2, level, ct.scale * pscale, ctx.id(), false, false);
        dot_into(ctx, acc, pts, rows, xs, true);
        c.plain_mults += static_cast<long>(giant.terms.size()) * HG;
        add_giant(ctx, keys, total, std::move(acc), giant.step, c);
      }
      outs[o] = finish(total);
    }
  } else {
    // Within map.work_bytes: the outputs in groups whose giant-group accumulators are held at
    // once; for each group, each input's baby rotations in chunks (one decomposition per chunk),
    // each chunk added into the accumulators of the terms that read it. The same rotations,
    // products and sums as above (a baby of an input read by several groups is made again for each).
    const size_t cap = std::max<size_t>(2, map.work_bytes / ct_bytes);
    constexpr size_t kMinChunk = 32;
    const size_t acc_cap = cap > 2 * kMinChunk ? cap - kMinChunk : cap / 2;
    for (const auto& group : output_groups(p, acc_cap)) {
      std::vector<std::vector<Ciphertext>> accs(group.size());
      std::vector<std::vector<bool>> written(group.size());
      std::vector<std::set<int>> need(p.in_cts);  // baby indices of each input this group reads
      size_t held = 0;
      for (size_t k = 0; k < group.size(); ++k) {
        const auto& giants = p.outputs[group[k]];
        for (size_t g = 0; g < giants.size(); ++g)
          accs[k].emplace_back(n, HG, 2, level, ct.scale * pscale, ctx.id(), false, false);
        written[k].assign(giants.size(), false);
        held += giants.size();
        for (auto& giant : giants)
          for (auto& t : giant.terms) need[t.in].insert(t.baby);
      }
      const size_t chunk = std::max<size_t>(1, cap > held + 2 ? cap - held - 2 : 1);
      for (int i = 0; i < p.in_cts; ++i) {
        if (need[i].empty()) continue;
        const Ciphertext xi = input(i);
        const std::vector<int> ids(need[i].begin(), need[i].end());
        std::vector<int> pos(p.babies[i].size(), -1);  // baby index -> position in the chunk
        for (size_t s = 0; s < ids.size(); s += chunk) {
          const size_t e = std::min(ids.size(), s + chunk);
          std::vector<long> steps;
          for (size_t k = s; k < e; ++k) { pos[ids[k]] = static_cast<int>(k - s); steps.push_back(p.babies[i][ids[k]]); }
          const std::vector<Ciphertext> rot = babies_of(ctx, keys, xi, steps, c);
          for (size_t k = 0; k < group.size(); ++k) {
            const auto& giants = p.outputs[group[k]];
            for (size_t g = 0; g < giants.size(); ++g) {
              terms.clear(); xs.clear();
              for (auto& t : giants[g].terms)
                if (t.in == i && pos[t.baby] >= 0) { terms.push_back(&t); xs.push_back(&rot[pos[t.baby]]); }
              if (terms.empty()) continue;
              term_plaintexts(encoder, map, terms, giants[g].step, level, local, pts, rows, c);
              dot_into(ctx, accs[k][g], pts, rows, xs, !written[k][g]);
              written[k][g] = true;
              c.plain_mults += static_cast<long>(terms.size()) * HG;
            }
          }
          for (size_t k = s; k < e; ++k) pos[ids[k]] = -1;
        }
      }
      for (size_t k = 0; k < group.size(); ++k) {
        const auto& giants = p.outputs[group[k]];
        Ciphertext total(n, HG, 2, level, ct.scale * pscale, ctx.id());
        for (size_t g = 0; g < giants.size(); ++g) add_giant(ctx, keys, total, std::move(accs[k][g]), giants[g].step, c);
        outs[group[k]] = finish(total);
      }
    }
  }
  // Interleave: output ct (h, o, g) = outs[o] item h * G + g.
  std::vector<std::pair<const Ciphertext*, int>> order;
  for (int h = 0; h < H; ++h)
    for (int o = 0; o < p.out_cts; ++o)
      for (int g = 0; g < G; ++g) order.push_back({&outs[o], h * G + g});
  Ciphertext result = assemble(ctx, order);
  result.bound = in.bound * p.norm_inf;
  if (cost) cost->add(c);
  return result;
}

// -- sources ------------------------------------------------------------------

void EntrySource::values(long id, cplx* out) const {
  std::fill(out, out + slots, cplx(0, 0));
  for (auto& v : vals[id]) out[v.first] += v.second;
}

std::shared_ptr<EntrySource> entry_source(long slots, const std::vector<long>& oc, const std::vector<long>& os,
                                          const std::vector<long>& ic, const std::vector<long>& is,
                                          const std::vector<cplx>& coef) {
  const size_t m = oc.size();
  if (os.size() != m || ic.size() != m || is.size() != m || coef.size() != m)
    fail("build a slot map", "entry arrays differ in length");
  auto src = std::make_shared<EntrySource>();
  src->slots = slots;
  long max_oc = 0;
  std::vector<std::array<long, 3>> key(m);
  std::vector<size_t> order;
  order.reserve(m);
  for (size_t k = 0; k < m; ++k) {
    if (os[k] < 0 || os[k] >= slots || is[k] < 0 || is[k] >= slots) fail("build a slot map", "slot index out of range");
    if (oc[k] < 0 || ic[k] < 0) fail("build a slot map", "ciphertext index out of range");
    max_oc = std::max(max_oc, oc[k]);
    key[k] = {oc[k], ic[k], ((is[k] - os[k]) % slots + slots) % slots};
    if (coef[k] != cplx(0, 0)) order.push_back(k);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });
  for (size_t j = 0; j < order.size(); ++j) {
    const size_t k = order[j];
    if (j == 0 || key[k] != key[order[j - 1]]) {
      src->keys.push_back(key[k]);
      src->vals.emplace_back();
    }
    src->vals.back().push_back({os[k], coef[k]});
  }
  // norm: max over output slots of the sum of |coefficients|
  std::vector<std::pair<long, double>> sums;
  sums.reserve(order.size());
  for (size_t k : order) sums.push_back({oc[k] * slots + os[k], std::abs(coef[k])});
  std::sort(sums.begin(), sums.end());
  for (size_t j = 0; j < sums.size();) {
    double t = 0;
    size_t e = j;
    while (e < sums.size() && sums[e].first == sums[j].first) t += sums[e++].second;
    src->norm_inf = std::max(src->norm_inf, t);
    j = e;
  }
  (void)max_oc;
  return src;
}

namespace {
inline long clamp_count(long block, long index, long total) {
  return std::max(0L, std::min(block, total - index * block));
}
}  // namespace

void MatmulSource::values(long id, cplx* out) const {
  std::fill(out, out + g.slots, cplx(0, 0));
  const auto& key = keys[id];
  const long b = key[0], a = key[1], step = key[2];
  if (right) {
    const long K = g.slots / g.bm, delta = step / g.bm;
    const long nin = clamp_count(g.bc_in, a, wrows), nout = clamp_count(g.bc_out, b, wcols);
    for (long t = 0; t < nout; ++t) {
      const long u = (t + delta) % K;
      if (u >= nin) continue;
      const cplx v = w[(a * g.bc_in + u) * wcols + b * g.bc_out + t];
      if (v == cplx(0, 0)) continue;
      for (long r = 0; r < g.br_in; ++r) out[r + g.bm * t] = v;
    }
  } else {
    const long nin = clamp_count(g.br_in, a, wcols), nout = clamp_count(g.br_out, b, wrows);
    const long d = step > g.slots / 2 ? step - g.slots : step;  // i - i'
    for (long ip = 0; ip < nout; ++ip) {
      const long i = g.bm == g.slots ? (ip + step) % g.slots : ip + d;
      if (i < 0 || i >= nin) continue;
      const cplx v = w[(b * g.br_out + ip) * wcols + a * g.br_in + i];
      if (v == cplx(0, 0)) continue;
      for (long t = 0; t < g.bc_in; ++t) out[ip + g.bm * t] = v;
    }
  }
}

std::shared_ptr<MatmulSource> matmul_source(const MatmulGeometry& g, bool right, long wrows, long wcols,
                                            std::vector<cplx> w) {
  const char* op = "plan a matrix product";
  if (g.bm <= 0 || (g.bm & (g.bm - 1)) || g.slots % g.bm) fail(op, "the block height must be a power of two <= slots");
  const long K = g.slots / g.bm;
  if (static_cast<long>(w.size()) != wrows * wcols) fail(op, "the weight has the wrong number of entries");
  if (g.br_in > g.bm || g.br_out > g.bm || g.bc_in > K || g.bc_out > K || g.br_in < 1 || g.bc_in < 1 ||
      g.br_out < 1 || g.bc_out < 1)
    fail(op, "block shape does not fit the super-slots");
  auto src = std::make_shared<MatmulSource>();
  src->g = g;
  src->right = right;
  src->wrows = wrows;
  src->wcols = wcols;
  src->w = std::move(w);
  if (right) {
    for (long j = 0; j < wcols; ++j) {
      double sum = 0;
      for (long k = 0; k < wrows; ++k) sum += std::abs(src->w[k * wcols + j]);
      src->norm_inf = std::max(src->norm_inf, sum);
    }
    if (g.br_in != g.br_out) fail(op, "a right product keeps the rows");
    if (g.nb_in * g.bc_in < wrows || g.nb_out * g.bc_out < wcols) fail(op, "blocks do not cover the weight");
    for (long b = 0; b < g.nb_out; ++b)
      for (long a = 0; a < g.nb_in; ++a) {
        const long nin = clamp_count(g.bc_in, a, wrows), nout = clamp_count(g.bc_out, b, wcols);
        for (long delta = 0; delta < K; ++delta) {
          bool any = false;
          for (long t = 0; t < nout && !any; ++t) {
            const long u = (t + delta) % K;
            if (u < nin && src->w[(a * g.bc_in + u) * wcols + b * g.bc_out + t] != cplx(0, 0)) any = true;
          }
          if (any) src->keys.push_back({b, a, delta * g.bm});
        }
      }
  } else {
    for (long i = 0; i < wrows; ++i) {
      double sum = 0;
      for (long k = 0; k < wcols; ++k) sum += std::abs(src->w[i * wcols + k]);
      src->norm_inf = std::max(src->norm_inf, sum);
    }
    if (g.bc_in != g.bc_out) fail(op, "a left product keeps the columns");
    if (g.nb_in * g.br_in < wcols || g.nb_out * g.br_out < wrows) fail(op, "blocks do not cover the weight");
    for (long b = 0; b < g.nb_out; ++b)
      for (long a = 0; a < g.nb_in; ++a) {
        const long nin = clamp_count(g.br_in, a, wcols), nout = clamp_count(g.br_out, b, wrows);
        std::set<long> ds;
        for (long ip = 0; ip < nout; ++ip)
          for (long i = 0; i < nin; ++i)
            if (src->w[(b * g.br_out + ip) * wcols + a * g.br_in + i] != cplx(0, 0)) ds.insert(((i - ip) % g.slots + g.slots) % g.slots);
        for (long d : ds) src->keys.push_back({b, a, d});
      }
  }
  return src;
}

}  // namespace ht::linalg
