#include "circuits/lintrans.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <string>

#include "backend/kernels/elementwise.hpp"
#include "ckks/evaluator.hpp"
#include "ckks/keyswitch.hpp"
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
  std::lock_guard<std::mutex> lock(device->mutex);
  auto it = device->copies.find(&be);
  if (it == device->copies.end()) {
    std::size_t words = 0;
    for (const auto& group : groups)
      for (const auto& term : group) words += term.second.data.size();
    backend::DeviceBuffer copy = be.allocate(words);
    std::size_t at = 0;
    for (const auto& group : groups)
      for (const auto& term : group) {
        be.upload(copy.data() + at, term.second.data.data(), term.second.data.size());
        at += term.second.data.size();
      }
    it = device->copies.emplace(&be, std::move(copy)).first;
  }
  const u64* at = it->second.data();
  for (const auto& group : groups)
    for (const auto& term : group) {
      out.push_back(at);
      at += term.second.data.size();
    }
  return out;
}

std::size_t LinearTransform::device_bytes() const {
  std::lock_guard<std::mutex> lock(device->mutex);
  std::size_t total = 0;
  for (const auto& c : device->copies) total += c.second.size() * sizeof(u64);
  return total;
}

namespace {

// Prime index of limb e of an extended (Q_level + P) polynomial.
int ext_prime_index(const Tables& ctx, int level, int e) { return e <= level ? e : ctx.p_index(e - level - 1); }

// The state of one application: the backend, the moduli of the extended
// limbs, the diagonals where the backend reads them, the rotation keys (held,
// so a wider key replacing one meanwhile cannot free it) and a scratch
// polynomial for automorphisms.
struct Run {
  backend::Backend& be;
  const Tables& ctx;
  const LinearTransform& lt;
  // Host memory: the CPU's fused loops (the cache-blocked product below, the
  // permuted sums in one pass); the same residues as the backend sequences.
  bool host;
  u64 n;
  int level, qn, ext;
  std::size_t q_words, ext_words;
  std::vector<Modulus> moduli;        // extended limbs
  std::vector<const u64*> diagonals;  // group by group
  std::vector<std::shared_ptr<const SwitchKey>> held;
  std::map<u64, KeyView> keys;
  backend::DeviceBuffer scratch;

  Run(backend::Backend& b, const Tables& c, const KeyChain& chain, const LinearTransform& t, bool host_loops)
      : be(b), ctx(c), lt(t), host(host_loops), n(c.n()), level(t.level), qn(t.level + 1),
        ext(t.level + 1 + c.alpha()), q_words(static_cast<std::size_t>(qn) * n),
        ext_words(static_cast<std::size_t>(ext) * n) {
    for (int e = 0; e < ext; ++e) moduli.push_back(ctx.modulus(ext_prime_index(ctx, level, e)));
    diagonals = lt.diagonal_data(be);
    for (long step : lt.rotation_steps()) {
      const u64 g = galois_element_for_step(step, n);
      held.push_back(chain.galois_key(g));
      keys.emplace(g, chain.device_key(held.back(), be));
    }
    scratch = be.allocate(ext_words);
  }

  const KeyView& key(u64 g) const { return keys.at(g); }

  // dst[Q limbs] += P * phi(src), phi the automorphism perm (or none): the
  // extended form of a Q ciphertext part (its P limbs are 0).
  void add_p_times(const u64* src, const u32* perm, u64* dst) {
    if (perm && host) {
      parallel_for(static_cast<size_t>(qn), [&](size_t i) {
        const u64 q = moduli[i].value;
        const ShoupConst& pm = ctx.p_mod(static_cast<int>(i));
        const u64* x = src + i * n;
        u64* o = dst + i * n;
        for (u64 k = 0; k < n; ++k) o[k] = add_mod(o[k], mul_shoup(x[perm[k]], pm, q), q);
      });
      return;
    }
    if (perm) {
      be.automorphism(scratch.data(), src, perm, static_cast<std::size_t>(qn), n);
      src = scratch.data();
    }
    mul_p_add(be, ctx, src, level, dst);
  }
  // dst += phi(src) over the first `count` extended limbs.
  void add(const u64* src, const u32* perm, u64* dst, int count) {
    if (perm && host) {
      parallel_for(static_cast<size_t>(count), [&](size_t e) {
        const u64 q = moduli[e].value;
        const u64* x = src + e * n;
        u64* o = dst + e * n;
        for (u64 k = 0; k < n; ++k) o[k] = add_mod(o[k], x[perm[k]], q);
      });
      return;
    }
    if (perm) {
      be.automorphism(scratch.data(), src, perm, static_cast<std::size_t>(count), n);
      src = scratch.data();
    }
    be.elementwise(backend::Elementwise::add, dst, dst, src, moduli.data(), static_cast<std::size_t>(count), n);
  }
  backend::DeviceBuffer zeros(std::size_t words) {
    backend::DeviceBuffer b = be.allocate(words);
    be.zero(b.data(), words);
    return b;
  }

  // For every giant group g over the first `count` limbs:
  //   out0[g] = sum_j pt_j * baby0[b_j],  out1[g] = sum_j pt_j * baby1[b_j].
  void dot(int count, const std::vector<backend::DeviceBuffer>& baby0, const std::vector<backend::DeviceBuffer>& baby1,
           std::vector<backend::DeviceBuffer>& out0, std::vector<backend::DeviceBuffer>& out1);
};

// The host form of Run::dot, lazily reduced: 128-bit sums, one Barrett
// reduction per coefficient (products < 2^122, so 32 terms stay below 2^127;
// longer sums fold). One pass over cache-sized chunks of each limb takes every
// group, so a plaintext chunk is read once for both parts and a baby's chunk
// stays in cache for every group that uses it (the sums are the same integers
// as group by group, so the residues are the backend's).
void dot_groups_host(const Run& r, int count, const std::vector<backend::DeviceBuffer>& baby0,
                     const std::vector<backend::DeviceBuffer>& baby1, std::vector<backend::DeviceBuffer>& out0,
                     std::vector<backend::DeviceBuffer>& out1) {
  const u64 n = r.n;
  const LinearTransform& lt = r.lt;
  parallel_for(static_cast<size_t>(count), [&](size_t e) {
    const Modulus& m = r.moduli[e];
    constexpr u64 kChunk = 256;
    Acc128 s0[kChunk], s1[kChunk];
    const size_t off = e * n;
    for (u64 t0 = 0; t0 < n; t0 += kChunk) {
      const u64 len = std::min<u64>(kChunk, n - t0);
      size_t di = 0;
      for (size_t g = 0; g < lt.groups.size(); ++g) {
        for (u64 t = 0; t < len; ++t) s0[t] = Acc128{}, s1[t] = Acc128{};
        int in_acc = 0;
        for (const auto& term : lt.groups[g]) {
          const u64* x0 = baby0[term.first].data() + off + t0;
          const u64* x1 = baby1[term.first].data() + off + t0;
          const u64* p = r.diagonals[di++] + off + t0;
          if (in_acc == 32) {
            for (u64 t = 0; t < len; ++t)
              s0[t] = Acc128{reduce_acc(s0[t], m), 0}, s1[t] = Acc128{reduce_acc(s1[t], m), 0};
            in_acc = 1;
          }
          for (u64 t = 0; t < len; ++t) {
            s0[t].mul_add(x0[t], p[t]);
            s1[t].mul_add(x1[t], p[t]);
          }
          ++in_acc;
        }
        u64* o0 = out0[g].data() + off + t0;
        u64* o1 = out1[g].data() + off + t0;
        for (u64 t = 0; t < len; ++t) o0[t] = reduce_acc(s0[t], m), o1[t] = reduce_acc(s1[t], m);
      }
    }
  });
}

// The backend form: one key-switching inner product per group and up to 32
// terms, the plaintexts as the shared operand (d) and the two baby parts as
// the key halves; longer groups add their partial sums.
void Run::dot(int count, const std::vector<backend::DeviceBuffer>& baby0,
              const std::vector<backend::DeviceBuffer>& baby1, std::vector<backend::DeviceBuffer>& out0,
              std::vector<backend::DeviceBuffer>& out1) {
  if (host) return dot_groups_host(*this, count, baby0, baby1, out0, out1);
  backend::DeviceBuffer part0, part1;
  std::vector<u64*> o0(count), o1(count);
  size_t di = 0;
  for (size_t g = 0; g < lt.groups.size(); ++g) {
    const auto& group = lt.groups[g];
    for (size_t j0 = 0; j0 < group.size(); j0 += 32) {
      const int terms = static_cast<int>(std::min<size_t>(32, group.size() - j0));
      const bool first = j0 == 0;
      if (!first && part0.size() == 0) {
        part0 = be.allocate(ext_words);
        part1 = be.allocate(ext_words);
      }
      std::vector<const u64*> d(static_cast<size_t>(count) * terms), kb(d.size()), ka(d.size());
      for (int e = 0; e < count; ++e) {
        const size_t off = static_cast<size_t>(e) * n;
        o0[e] = (first ? out0[g].data() : part0.data()) + off;
        o1[e] = (first ? out1[g].data() : part1.data()) + off;
        for (int j = 0; j < terms; ++j) {
          const size_t t = static_cast<size_t>(e) * terms + j;
          d[t] = diagonals[di + j0 + j] + off;
          kb[t] = baby0[group[j0 + j].first].data() + off;
          ka[t] = baby1[group[j0 + j].first].data() + off;
        }
      }
      be.key_switch_inner(o0.data(), o1.data(), d.data(), kb.data(), ka.data(), terms, nullptr, moduli.data(),
                          static_cast<size_t>(count), n);
      if (!first) {
        add(part0.data(), nullptr, out0[g].data(), count);
        add(part1.data(), nullptr, out1[g].data(), count);
      }
    }
    di += group.size();
  }
}

// Diagonals over Q only: the babies of the hoisted decomposition are brought
// down to Q (one ModDown per baby and part), the plaintext products and giant
// sums run on the level + 1 limbs of Q, and each giant rotation's key-switch
// output and the total stay in Q*P (the Q parts enter it times P), ending in
// one fused ModDown-rescale as below. The same result as the extended form.
void apply_q_diagonals(Run& r, const u64* c0, const u64* c1, u64* o0, u64* o1) {
  backend::Backend& be = r.be;
  const Tables& ctx = r.ctx;
  const LinearTransform& lt = r.lt;
  const int level = r.level;
  std::vector<backend::DeviceBuffer> baby0, baby1;
  {
    const Decomposition dec = decompose(be, ctx, c1, level);
    backend::DeviceBuffer e0 = be.allocate(r.ext_words), e1 = be.allocate(r.ext_words);
    for (long j : lt.babies) {
      baby0.push_back(be.allocate(r.q_words));
      baby1.push_back(be.allocate(r.q_words));
      if (j == 0) {
        be.copy(baby0.back().data(), c0, r.q_words);
        be.copy(baby1.back().data(), c1, r.q_words);
        continue;
      }
      const u64 g = galois_element_for_step(j, r.n);
      const u32* perm = ctx.galois_perm(g).data();
      inner_product(be, ctx, dec, r.key(g), perm, e0.data(), e1.data());
      r.add_p_times(c0, perm, e0.data());
      mod_down(be, ctx, e0.data(), level, baby0.back().data(), false);
      mod_down(be, ctx, e1.data(), level, baby1.back().data(), false);
    }
  }
  backend::DeviceBuffer total0 = r.zeros(r.ext_words), total1 = r.zeros(r.ext_words);
  backend::DeviceBuffer t0 = be.allocate(r.ext_words), t1 = be.allocate(r.ext_words);
  std::vector<backend::DeviceBuffer> sum0, sum1;
  for (size_t gi = 0; gi < lt.giants.size(); ++gi) {
    sum0.push_back(be.allocate(r.q_words));
    sum1.push_back(be.allocate(r.q_words));
  }
  r.dot(r.qn, baby0, baby1, sum0, sum1);  // over Q's limbs only
  for (size_t gi = 0; gi < lt.giants.size(); ++gi) {
    const u64* acc0 = sum0[gi].data();
    const u64* acc1 = sum1[gi].data();
    const long step = lt.giants[gi];
    if (normalize_step(step, ctx.slots()) == 0) {
      r.add_p_times(acc0, nullptr, total0.data());
      r.add_p_times(acc1, nullptr, total1.data());
      continue;
    }
    const u64 g = galois_element_for_step(step, r.n);
    const u32* perm = ctx.galois_perm(g).data();
    const Decomposition dec = decompose(be, ctx, acc1, level);
    inner_product(be, ctx, dec, r.key(g), perm, t0.data(), t1.data());
    r.add_p_times(acc0, perm, t0.data());
    r.add(t0.data(), nullptr, total0.data(), r.ext);
    r.add(t1.data(), nullptr, total1.data(), r.ext);
  }
  mod_down_rescale(be, ctx, total0.data(), level, o0);
  mod_down_rescale(be, ctx, total1.data(), level, o1);
}

// Double hoisting (Bossuat et al., Eurocrypt 2021, sec. 6): c1 is decomposed
// once; every baby rotation stays in the extended basis Q*P (no ModDown);
// each giant group's sum of plaintext products is taken there and
// rotated by its giant step: the c1 part is brought down once for its key
// switch, the c0 part rotates in Q*P; the total is divided by P and rescaled
// in one fused step. Per transform: 1 + n2 ModUps, n2 ModDowns and one fused
// ModDown-rescale, against 1 + n2 ModUps and 2 (n1 + n2) ModDowns plus a
// rescale before.
void apply_extended(Run& r, const u64* c0, const u64* c1, u64* o0, u64* o1) {
  backend::Backend& be = r.be;
  const Tables& ctx = r.ctx;
  const LinearTransform& lt = r.lt;
  const int level = r.level;
  // Babies in Q*P: (P phi_j(c0) + ks0, ks1), phi_0 = identity (no key switch).
  std::vector<backend::DeviceBuffer> baby0, baby1;
  {
    const Decomposition dec = decompose(be, ctx, c1, level);
    for (long j : lt.babies) {
      baby0.push_back(j == 0 ? r.zeros(r.ext_words) : be.allocate(r.ext_words));
      baby1.push_back(j == 0 ? r.zeros(r.ext_words) : be.allocate(r.ext_words));
      u64* e0 = baby0.back().data();
      u64* e1 = baby1.back().data();
      if (j == 0) {
        r.add_p_times(c0, nullptr, e0);
        r.add_p_times(c1, nullptr, e1);
        continue;
      }
      const u64 g = galois_element_for_step(j, r.n);
      const u32* perm = ctx.galois_perm(g).data();
      inner_product(be, ctx, dec, r.key(g), perm, e0, e1);
      r.add_p_times(c0, perm, e0);
    }
  }
  backend::DeviceBuffer total0 = r.zeros(r.ext_words), total1 = r.zeros(r.ext_words);
  std::vector<backend::DeviceBuffer> sum0, sum1;  // per giant group, in Q*P
  for (size_t gi = 0; gi < lt.giants.size(); ++gi) {
    sum0.push_back(be.allocate(r.ext_words));
    sum1.push_back(be.allocate(r.ext_words));
  }
  r.dot(r.ext, baby0, baby1, sum0, sum1);
  baby0.clear();
  baby1.clear();
  backend::DeviceBuffer a1 = be.allocate(r.q_words);
  for (size_t gi = 0; gi < lt.giants.size(); ++gi) {
    u64* acc0 = sum0[gi].data();
    u64* acc1 = sum1[gi].data();
    const long step = lt.giants[gi];
    if (normalize_step(step, ctx.slots()) == 0) {
      r.add(acc0, nullptr, total0.data(), r.ext);
      r.add(acc1, nullptr, total1.data(), r.ext);
      continue;
    }
    // The giant rotation: the c0 part is rotated in Q*P as it is (an
    // automorphism commutes with the final division by P); only the c1
    // part goes down to Q for its key switch, whose output stays in Q*P.
    mod_down(be, ctx, acc1, level, a1.data(), false);
    const u64 g = galois_element_for_step(step, r.n);
    const u32* perm = ctx.galois_perm(g).data();
    r.add(acc0, perm, total0.data(), r.ext);
    const Decomposition dec = decompose(be, ctx, a1.data(), level);
    inner_product(be, ctx, dec, r.key(g), perm, acc0, acc1);
    r.add(acc0, nullptr, total0.data(), r.ext);
    r.add(acc1, nullptr, total1.data(), r.ext);
  }
  mod_down_rescale(be, ctx, total0.data(), level, o0);
  mod_down_rescale(be, ctx, total1.data(), level, o1);
}

void apply_poly(Run& r, const u64* c0, const u64* c1, u64* o0, u64* o1) {
  if (r.lt.extended) apply_extended(r, c0, c1, o0, o1);
  else apply_q_diagonals(r, c0, c1, o0, o1);
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
  Run r(backend::cpu(), ctx, keys, lt, true);
  for (int b = 0; b < ct.batch; ++b) apply_poly(r, ct.poly(b, 0), ct.poly(b, 1), out.poly(b, 0), out.poly(b, 1));
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
  DeviceCiphertext out;
  out.data = be.allocate(static_cast<size_t>(ct.batch) * 2 * lt.level * ctx.n());
  out.n = ctx.n();
  out.batch = ct.batch;
  out.size = 2;
  out.level = lt.level - 1;
  out.context_id = ctx.id();
  // The backend's own product (the one a GPU runs), also on the CPU backend.
  Run r(be, ctx, keys, lt, false);
  for (int b = 0; b < ct.batch; ++b) apply_poly(r, ct.poly(b, 0), ct.poly(b, 1), out.poly(b, 0), out.poly(b, 1));
  out.scale = ctx.scale_at(out.level);
  out.bound = in.bound * lt.norm_inf;
  return out;
}

}  // namespace resident
}  // namespace ht
