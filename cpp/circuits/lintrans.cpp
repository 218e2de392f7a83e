#include "circuits/lintrans.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

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

namespace {

// Prime index of limb e of an extended (Q_level + P) polynomial.
int ext_prime_index(const Tables& ctx, int level, int e) { return e <= level ? e : ctx.p_index(e - level - 1); }

// For every giant group g: out0[g] = sum_j pt_j * baby0[b_j] and out1[g] =
// sum_j pt_j * baby1[b_j] over the extended limbs, lazily reduced: 128-bit
// sums, one Barrett reduction per coefficient (products < 2^122, so 32 terms
// stay below 2^127; longer sums fold). One pass over cache-sized chunks of
// each limb takes every group, so a plaintext chunk is read once for both
// parts and a baby's chunk stays in cache for every group that uses it (the
// sums are the same integers as group by group, so the residues are too).
void dot_groups(const Tables& ctx, int level, int ext, const LinearTransform& lt, const std::vector<Buffer>& baby0,
                const std::vector<Buffer>& baby1, std::vector<Buffer>& out0, std::vector<Buffer>& out1) {
  const u64 n = ctx.n();
  parallel_for(static_cast<size_t>(ext), [&](size_t e) {
    const Modulus& m = ctx.modulus(ext_prime_index(ctx, level, static_cast<int>(e)));
    constexpr u64 kChunk = 256;
    Acc128 s0[kChunk], s1[kChunk];
    const size_t off = e * n;
    for (u64 t0 = 0; t0 < n; t0 += kChunk) {
      const u64 len = std::min<u64>(kChunk, n - t0);
      for (size_t g = 0; g < lt.groups.size(); ++g) {
        for (u64 t = 0; t < len; ++t) s0[t] = Acc128{}, s1[t] = Acc128{};
        int in_acc = 0;
        for (const auto& term : lt.groups[g]) {
          const u64* x0 = baby0[term.first].data() + off + t0;
          const u64* x1 = baby1[term.first].data() + off + t0;
          const u64* p = term.second.data.data() + off + t0;
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

// dst[Q limbs] += P * src (optionally through the NTT-domain automorphism
// perm): the extended form of a Q ciphertext part (its P limbs are 0).
void add_p_times(const Tables& ctx, int level, const u64* src, const u32* perm, u64* dst) {
  const u64 n = ctx.n();
  parallel_for(static_cast<size_t>(level + 1), [&](size_t i) {
    const u64 q = ctx.prime(static_cast<int>(i));
    const ShoupConst& pm = ctx.p_mod(static_cast<int>(i));
    const u64* x = src + i * n;
    u64* o = dst + i * n;
    if (perm) {
      for (u64 k = 0; k < n; ++k) o[k] = add_mod(o[k], mul_shoup(x[perm[k]], pm, q), q);
    } else {
      for (u64 k = 0; k < n; ++k) o[k] = add_mod(o[k], mul_shoup(x[k], pm, q), q);
    }
  });
}

void add_ext(const Tables& ctx, int level, int ext, const u64* src, u64* dst) {
  const u64 n = ctx.n();
  parallel_for(static_cast<size_t>(ext), [&](size_t e) {
    const u64 q = ctx.prime(ext_prime_index(ctx, level, static_cast<int>(e)));
    for (u64 k = 0; k < n; ++k) kernels::add_limb(dst + e * n, dst + e * n, src + e * n, q, k);
  });
}

// dst += src through the NTT-domain automorphism perm, over the extended limbs.
void add_ext_permuted(const Tables& ctx, int level, int ext, const u64* src, const u32* perm, u64* dst) {
  const u64 n = ctx.n();
  parallel_for(static_cast<size_t>(ext), [&](size_t e) {
    const u64 q = ctx.prime(ext_prime_index(ctx, level, static_cast<int>(e)));
    const u64* x = src + e * n;
    u64* o = dst + e * n;
    for (u64 k = 0; k < n; ++k) o[k] = add_mod(o[k], x[perm[k]], q);
  });
}

}  // namespace

namespace {

// Diagonals over Q only: the babies of the hoisted decomposition are brought
// down to Q (one ModDown per baby and part), the plaintext products and giant
// sums run on the level + 1 limbs of Q, and each giant rotation's key-switch
// output and the total stay in Q*P (the Q parts enter it times P), ending in
// one fused ModDown-rescale as below. The same result as the extended form.
Ciphertext apply_q_diagonals(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct,
                             const LinearTransform& lt, double in_bound) {
  const u64 n = ctx.n();
  const int level = lt.level;
  const int qn = level + 1;
  const int ext = level + 1 + ctx.alpha();
  const size_t ext_words = static_cast<size_t>(ext) * n, q_words = static_cast<size_t>(qn) * n;
  Ciphertext out(n, ct.batch, 2, level - 1, 1.0, ctx.id(), false, false);
  for (int b = 0; b < ct.batch; ++b) {
    const u64* c0 = ct.poly(b, 0);
    const u64* c1 = ct.poly(b, 1);
    std::vector<Buffer> baby0, baby1;
    {
      const Decomposition dec = decompose(ctx, c1, level);
      Buffer e0 = Buffer::uninitialized(ext_words), e1 = Buffer::uninitialized(ext_words);
      for (long j : lt.babies) {
        baby0.push_back(Buffer::uninitialized(q_words));
        baby1.push_back(Buffer::uninitialized(q_words));
        if (j == 0) {
          std::memcpy(baby0.back().data(), c0, q_words * sizeof(u64));
          std::memcpy(baby1.back().data(), c1, q_words * sizeof(u64));
          continue;
        }
        const u64 g = galois_element_for_step(j, n);
        const std::vector<u32>& perm = ctx.galois_perm(g);
        inner_product(ctx, dec, *keys.galois_key(g), perm.data(), e0.data(), e1.data());
        add_p_times(ctx, level, c0, perm.data(), e0.data());
        mod_down(ctx, e0.data(), level, baby0.back().data(), false);
        mod_down(ctx, e1.data(), level, baby1.back().data(), false);
      }
    }
    Buffer total0(ext_words), total1(ext_words);
    Buffer t0 = Buffer::uninitialized(ext_words), t1 = Buffer::uninitialized(ext_words);
    std::vector<Buffer> sum0, sum1;
    for (size_t gi = 0; gi < lt.giants.size(); ++gi) {
      sum0.push_back(Buffer::uninitialized(q_words));
      sum1.push_back(Buffer::uninitialized(q_words));
    }
    dot_groups(ctx, level, qn, lt, baby0, baby1, sum0, sum1);  // over Q's limbs only
    for (size_t gi = 0; gi < lt.giants.size(); ++gi) {
      const Buffer& acc0 = sum0[gi];
      const Buffer& acc1 = sum1[gi];
      const long step = lt.giants[gi];
      if (normalize_step(step, ctx.slots()) == 0) {
        add_p_times(ctx, level, acc0.data(), nullptr, total0.data());
        add_p_times(ctx, level, acc1.data(), nullptr, total1.data());
        continue;
      }
      const u64 g = galois_element_for_step(step, n);
      const std::vector<u32>& perm = ctx.galois_perm(g);
      const Decomposition dec = decompose(ctx, acc1.data(), level);
      inner_product(ctx, dec, *keys.galois_key(g), perm.data(), t0.data(), t1.data());
      add_p_times(ctx, level, acc0.data(), perm.data(), t0.data());
      add_ext(ctx, level, ext, t0.data(), total0.data());
      add_ext(ctx, level, ext, t1.data(), total1.data());
    }
    mod_down_rescale(ctx, total0.data(), level, out.poly(b, 0));
    mod_down_rescale(ctx, total1.data(), level, out.poly(b, 1));
  }
  out.scale = ctx.scale_at(out.level);
  out.bound = in_bound * lt.norm_inf;
  return out;
}

}  // namespace

// Double hoisting (Bossuat et al., Eurocrypt 2021, sec. 6): c1 is decomposed
// once; every baby rotation stays in the extended basis Q*P (no ModDown);
// each giant group's sum of plaintext products is taken there and
// rotated by its giant step: the c1 part is brought down once for its key
// switch, the c0 part rotates in Q*P; the total is divided by P and rescaled
// in one fused step. Per transform: 1 + n2 ModUps, n2 ModDowns and one fused
// ModDown-rescale, against 1 + n2 ModUps and 2 (n1 + n2) ModDowns plus a
// rescale before.
Ciphertext apply_linear_transform(const Tables& ctx, const KeyChain& keys, const Ciphertext& in,
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
  if (!lt.extended) return apply_q_diagonals(ctx, keys, ct, lt, in.bound);
  const u64 n = ctx.n();
  const int level = lt.level;
  const int ext = level + 1 + ctx.alpha();
  const size_t ext_words = static_cast<size_t>(ext) * n;
  Ciphertext out(n, ct.batch, 2, level - 1, 1.0, ctx.id(), false, false);
  for (int b = 0; b < ct.batch; ++b) {
    const u64* c0 = ct.poly(b, 0);
    const u64* c1 = ct.poly(b, 1);
    // Babies in Q*P: (P phi_j(c0) + ks0, ks1), phi_0 = identity (no key switch).
    std::vector<Buffer> baby0, baby1;
    {
      const Decomposition dec = decompose(ctx, c1, level);
      for (long j : lt.babies) {
        baby0.emplace_back(ext_words, false, j == 0);
        baby1.emplace_back(ext_words, false, j == 0);
        u64* e0 = baby0.back().data();
        u64* e1 = baby1.back().data();
        if (j == 0) {
          add_p_times(ctx, level, c0, nullptr, e0);
          add_p_times(ctx, level, c1, nullptr, e1);
          continue;
        }
        const u64 g = galois_element_for_step(j, n);
        const std::vector<u32>& perm = ctx.galois_perm(g);
        inner_product(ctx, dec, *keys.galois_key(g), perm.data(), e0, e1);
        add_p_times(ctx, level, c0, perm.data(), e0);
      }
    }
    Buffer total0(ext_words), total1(ext_words);
    std::vector<Buffer> sum0, sum1;  // per giant group, in Q*P
    for (size_t gi = 0; gi < lt.giants.size(); ++gi) {
      sum0.push_back(Buffer::uninitialized(ext_words));
      sum1.push_back(Buffer::uninitialized(ext_words));
    }
    dot_groups(ctx, level, ext, lt, baby0, baby1, sum0, sum1);
    baby0.clear();
    baby1.clear();
    for (size_t gi = 0; gi < lt.giants.size(); ++gi) {
      Buffer& acc0 = sum0[gi];
      Buffer& acc1 = sum1[gi];
      const long step = lt.giants[gi];
      if (normalize_step(step, ctx.slots()) == 0) {
        add_ext(ctx, level, ext, acc0.data(), total0.data());
        add_ext(ctx, level, ext, acc1.data(), total1.data());
        continue;
      }
      // The giant rotation: the c0 part is rotated in Q*P as it is (an
      // automorphism commutes with the final division by P); only the c1
      // part goes down to Q for its key switch, whose output stays in Q*P.
      Buffer a1 = Buffer::uninitialized(static_cast<size_t>(level + 1) * n);
      mod_down(ctx, acc1.data(), level, a1.data(), false);
      const u64 g = galois_element_for_step(step, n);
      const std::vector<u32>& perm = ctx.galois_perm(g);
      add_ext_permuted(ctx, level, ext, acc0.data(), perm.data(), total0.data());
      const Decomposition dec = decompose(ctx, a1.data(), level);
      inner_product(ctx, dec, *keys.galois_key(g), perm.data(), acc0.data(), acc1.data());
      add_ext(ctx, level, ext, acc0.data(), total0.data());
      add_ext(ctx, level, ext, acc1.data(), total1.data());
    }
    mod_down_rescale(ctx, total0.data(), level, out.poly(b, 0));
    mod_down_rescale(ctx, total1.data(), level, out.poly(b, 1));
  }
  out.scale = ctx.scale_at(out.level);
  out.bound = in.bound * lt.norm_inf;
  return out;
}

}  // namespace ht
