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
  if (n1 <= 0) {
    double best = 1e300;
    std::vector<std::vector<long>> b(in_cts), g(out_cts);
    for (long c : n1_candidates(slots, diags.size(), diags)) {
      const double w = plan_weight(diags, in_cts, out_cts, c, b, g);
      if (w < best - 1e-9) { best = w; n1 = c; }
    }
  }
  if (n1 <= 0 || n1 > slots) fail(op, "the baby step must be in [1, slots]");
  static_cast<bsgs::Plan&>(p) = bsgs::make_plan(slots, in_cts, out_cts, diags, n1);
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

// The diagonals of a block map for the engine: the cached chunks (in host
// memory, or their copy on the device), or the terms of one giant encoded
// when the engine reaches it (streamed; uploaded for a device).
struct MapDiagonals : bsgs::DiagonalStore {
  const BlockMap& map;
  const Encoder& encoder;
  Cost& cost;
  std::vector<Plaintext> local;
  backend::DeviceBuffer uploaded;
  MapDiagonals(const BlockMap& m, const Encoder& e, Cost& c) : map(m), encoder(e), cost(c) {}

  int window() const override { return map.cached() ? 0 : 1; }

  std::vector<const u64*> fetch(backend::Backend& be, int o, int g0, int g1) override {
    std::vector<std::pair<const MapPlan::Term*, long>> terms;  // (term, its giant's step)
    for (int k = g0; k < g1; ++k)
      for (const auto& t : map.plan.outputs[o][k].terms) terms.push_back({&t, map.plan.outputs[o][k].step});
    return diagonals(be, terms);
  }

  // Streamed maps encode only the terms asked for (a bounded application
  // reads a giant a chunk of babies at a time: each term is encoded once).
  std::vector<const u64*> fetch_terms(backend::Backend& be, int o, int k, const std::vector<int>& idx) override {
    const auto& giant = map.plan.outputs[o][k];
    std::vector<std::pair<const MapPlan::Term*, long>> terms;
    for (int t : idx) terms.push_back({&giant.terms[t], giant.step});
    return diagonals(be, terms);
  }

  // The terms' plaintexts (term, its giant's step) in the memory of `be`.
  std::vector<const u64*> diagonals(backend::Backend& be,
                                    const std::vector<std::pair<const MapPlan::Term*, long>>& terms) {
    const bool device = be.device().kind != backend::DeviceKind::cpu;
    std::vector<const u64*> out;
    if (map.cached()) {
      std::vector<const u64*> base(map.chunks.size());
      if (device) {
        std::vector<std::pair<const u64*, std::size_t>> parts;
        for (const auto& c : map.chunks) parts.push_back({c.data.data(), c.data.size()});
        const u64* at = map.device->get(be, parts);
        for (size_t c = 0; c < map.chunks.size(); ++c) {
          base[c] = at;
          at += map.chunks[c].data.size();
        }
      } else {
        for (size_t c = 0; c < map.chunks.size(); ++c) base[c] = map.chunks[c].data.data();
      }
      for (const auto& tk : terms) {
        const auto w = map.where[tk.first->diag];
        const Plaintext& chunk = map.chunks[w.first];
        out.push_back(base[w.first] + static_cast<size_t>(w.second) * chunk.limbs() * chunk.n);
      }
      return out;
    }
    local.clear();
    for (size_t s = 0; s < terms.size(); s += kChunk) {
      std::vector<std::pair<long, long>> part;
      for (size_t t = s; t < std::min(terms.size(), s + kChunk); ++t)
        part.push_back({terms[t].first->diag, terms[t].second});
      local.push_back(encode_terms(encoder, map, part, map.level));
      cost.encodes += static_cast<long>(part.size());
      for (size_t r = 0; r < part.size(); ++r) out.push_back(local.back().poly(static_cast<int>(r), 0));
    }
    if (!device) return out;
    std::size_t words = 0;
    for (const auto& pt : local) words += pt.data.size();
    uploaded = be.allocate(std::max<std::size_t>(words, 1));
    std::size_t at = 0;
    std::vector<const u64*> moved;
    for (const auto& pt : local) {
      be.upload(uploaded.data() + at, pt.data.data(), pt.data.size());
      for (int r = 0; r < pt.batch; ++r) moved.push_back(uploaded.data() + at + static_cast<size_t>(r) * pt.limbs() * pt.n);
      at += pt.data.size();
    }
    return moved;
  }
};

template <class Ct>
void check_map_input(const Tables& ctx, const KeyChain& keys, const Ct& in, const BlockMap& map, int inner_groups) {
  const char* op = "apply a block linear map";
  const MapPlan& p = map.plan;
  if (in.context_id != ctx.id()) fail(op, "the ciphertext belongs to another context");
  if (&keys.tables() != &ctx) fail(op, "the keys belong to another context");
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
}

// ct at the map's level; out: H * O * G items at level - 1.
template <class Ct>
void run_map(backend::Backend& be, const Tables& ctx, const KeyChain& keys, const Encoder& encoder, const Ct& ct,
             const BlockMap& map, int G, Ct& out, Cost* cost, bool host) {
  const MapPlan& p = map.plan;
  const int I = p.in_cts, O = p.out_cts, H = ct.batch / (I * G);
  std::vector<bsgs::Operand> in;
  std::vector<bsgs::Output> outs;
  for (int h = 0; h < H; ++h)
    for (int g = 0; g < G; ++g) {
      for (int i = 0; i < I; ++i) {
        const int b = (h * I + i) * G + g;
        in.push_back({ct.poly(b, 0), ct.poly(b, 1)});
      }
      for (int o = 0; o < O; ++o) {
        const int b = (h * O + o) * G + g;
        outs.push_back({out.poly(b, 0), out.poly(b, 1)});
      }
    }
  Cost c = p.predicted(static_cast<long>(H) * G);
  MapDiagonals diagonals(map, encoder, c);
  // Within map.work_bytes the engine may make babies in chunks: its own counts.
  const bsgs::Counts k = bsgs::apply(be, ctx, keys, p, diagonals, map.level, false, host, in, outs, map.work_bytes);
  c.rotations = k.rotations;
  c.hoisted = k.hoisted;
  c.decompositions = k.decompositions;
  out.scale = ctx.scale_at(map.level - 1);
  out.bound = ct.bound * p.norm_inf;
  if (cost) cost->add(c);
}

}  // namespace

Ciphertext apply_block_map(const Tables& ctx, const KeyChain& keys, const Encoder& encoder, const Ciphertext& in,
                           const BlockMap& map, int inner_groups, Cost* cost) {
  check_map_input(ctx, keys, in, map, inner_groups);
  const Ciphertext ct = in.level == map.level ? in : level_to(ctx, in, map.level);
  const MapPlan& p = map.plan;
  Ciphertext out(ctx.n(), in.batch / p.in_cts * p.out_cts, 2, map.level - 1, 1.0, ctx.id(), false, false);
  run_map(backend::cpu(), ctx, keys, encoder, ct, map, inner_groups, out, cost, true);
  return out;
}

DeviceCiphertext apply_block_map(const Tables& ctx, const KeyChain& keys, const Encoder& encoder,
                                 const DeviceCiphertext& in, const BlockMap& map, int inner_groups, Cost* cost) {
  check_map_input(ctx, keys, in, map, inner_groups);
  DeviceCiphertext lowered;
  if (in.level != map.level) lowered = resident::level_to(ctx, in, map.level);
  const DeviceCiphertext& ct = in.level == map.level ? in : lowered;
  const MapPlan& p = map.plan;
  backend::Backend& be = ct.backend();
  DeviceCiphertext out = resident::make_batch(ctx, be, in.batch / p.in_cts * p.out_cts, 2, map.level - 1, 1.0, false);
  // The backend's own product (the one a GPU runs), also on the CPU backend.
  run_map(be, ctx, keys, encoder, ct, map, inner_groups, out, cost, false);
  return out;
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

// max over i < count of sum_{k < len} |w[i * si + k * sk]|: the largest column (row) sum of |W|.
double max_abs_sum(const std::vector<cplx>& w, long count, long len, long si, long sk) {
  double best = 0;
  for (long i = 0; i < count; ++i) {
    double sum = 0;
    for (long k = 0; k < len; ++k) sum += std::abs(w[i * si + k * sk]);
    best = std::max(best, sum);
  }
  return best;
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
  // |out| <= norm_inf * |in|: the largest column sum of |W| for Z = X W, the largest row sum for Z = W X.
  src->norm_inf = right ? max_abs_sum(src->w, wcols, wrows, 1, wcols) : max_abs_sum(src->w, wrows, wcols, wcols, 1);
  if (right) {
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
