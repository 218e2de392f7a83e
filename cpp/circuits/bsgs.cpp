#include "circuits/bsgs.hpp"

#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "circuits/bsgs_run.hpp"
#include "core/error.hpp"

namespace ht::bsgs {

long Plan::diagonals() const {
  long c = 0;
  for (auto& o : outputs)
    for (auto& g : o) c += static_cast<long>(g.terms.size());
  return c;
}

std::vector<long> Plan::rotation_steps() const {
  std::set<long> s;
  for (auto& b : babies)
    for (long x : b) if (x) s.insert(x);
  for (auto& o : outputs)
    for (auto& g : o) if (g.step) s.insert(g.step);
  return {s.begin(), s.end()};
}

Plan make_plan(long slots, int in_cts, int out_cts, const std::vector<std::array<long, 3>>& diags, long n1) {
  const char* op = "plan a linear map";
  if (slots <= 0 || (slots & (slots - 1))) fail(op, "slots must be a power of two");
  if (in_cts < 1 || out_cts < 1) fail(op, "needs at least one input and one output ciphertext");
  if (n1 <= 0 || n1 > slots) fail(op, "the baby step must be in [1, slots]");
  Plan p;
  p.slots = slots;
  p.in_cts = in_cts;
  p.out_cts = out_cts;
  p.n1 = n1;
  std::vector<std::set<long>> bset(in_cts);
  for (auto& d : diags) {
    if (d[0] < 0 || d[0] >= out_cts || d[1] < 0 || d[1] >= in_cts) fail(op, "a diagonal names a missing ciphertext");
    bset[d[1]].insert(((d[2] % slots) + slots) % slots % n1);
  }
  p.babies.resize(in_cts);
  for (int i = 0; i < in_cts; ++i) p.babies[i].assign(bset[i].begin(), bset[i].end());
  std::vector<std::map<long, std::vector<Term>>> by_giant(out_cts);
  for (size_t id = 0; id < diags.size(); ++id) {
    const auto& d = diags[id];
    const long step = ((d[2] % slots) + slots) % slots, baby = step % n1;
    const auto& bs = p.babies[d[1]];
    const int bi = static_cast<int>(std::lower_bound(bs.begin(), bs.end(), baby) - bs.begin());
    by_giant[d[0]][step - baby].push_back({static_cast<int>(d[1]), bi, static_cast<long>(id)});
  }
  p.outputs.resize(out_cts);
  for (int o = 0; o < out_cts; ++o)
    for (auto& kv : by_giant[o]) p.outputs[o].push_back({kv.first, std::move(kv.second)});
  return p;
}

std::vector<const u64*> DiagonalStore::fetch_terms(backend::Backend& be, int out, int k,
                                                  const std::vector<int>& terms) {
  const std::vector<const u64*> all = fetch(be, out, k, k + 1);
  std::vector<const u64*> d;
  d.reserve(terms.size());
  for (int t : terms) d.push_back(all[t]);
  return d;
}

const u64* DeviceCopies::get(backend::Backend& be, const std::vector<std::pair<const u64*, std::size_t>>& parts) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = copies.find(&be);
  if (it == copies.end()) {
    std::size_t words = 0;
    for (const auto& p : parts) words += p.second;
    backend::DeviceBuffer copy = be.allocate(std::max<std::size_t>(words, 1));
    std::size_t at = 0;
    for (const auto& p : parts) {
      be.upload(copy.data() + at, p.first, p.second);
      at += p.second;
    }
    it = copies.emplace(&be, std::move(copy)).first;
  }
  return it->second.data();
}

std::size_t DeviceCopies::bytes() {
  std::lock_guard<std::mutex> lock(mutex);
  std::size_t total = 0;
  for (const auto& c : copies) total += c.second.size() * sizeof(u64);
  return total;
}

// ---- the steps of one application (circuits/bsgs_run.hpp) ----------------------

namespace detail {

void Run::babies(const Operand& c, const std::vector<long>& steps, std::vector<backend::DeviceBuffer>& b0,
                 std::vector<backend::DeviceBuffer>& b1) {
  b0.clear();
  b1.clear();
  bool any_direct = false;
  for (long j : steps) any_direct |= j != 0 && direct(j);
  Decomposition dec;
  if (any_direct) dec = decompose(be, ctx, c.c1, level);
  for (long j : steps) {
    const bool sum_into = extended && (j == 0 || !direct(j));  // P * x added to zeros
    b0.push_back(sum_into ? zeros(ext_words) : be.allocate(extended ? ext_words : q_words));
    b1.push_back(sum_into ? zeros(ext_words) : be.allocate(extended ? ext_words : q_words));
    u64* o0 = b0.back().data();
    u64* o1 = b1.back().data();
    if (j == 0 || !direct(j)) {
      const u64 *x0 = c.c0, *x1 = c.c1;
      if (j != 0) {
        rotate_composed(c.c0, c.c1, j);
        x0 = r0.data();
        x1 = r1.data();
      }
      if (extended) {
        add_p_times(x0, nullptr, o0);
        add_p_times(x1, nullptr, o1);
      } else {
        be.copy(o0, x0, q_words);
        be.copy(o1, x1, q_words);
      }
      continue;
    }
    const u64 g = galois_element_for_step(j, n);
    const u32* perm = ctx.galois_perm(g).data();
    if (extended) {
      inner_product(be, ctx, dec, keys.at(g), perm, o0, o1);
      add_p_times(c.c0, perm, o0);
    } else {
      inner_product(be, ctx, dec, keys.at(g), perm, t0.data(), t1.data());
      add_p_times(c.c0, perm, t0.data());
      mod_down(be, ctx, t0.data(), level, o0, false);
      mod_down(be, ctx, t1.data(), level, o1, false);
    }
  }
}

// The host form of Run::dot, lazily reduced: 128-bit sums, one Barrett
// reduction per coefficient (products < 2^122, so 32 terms stay below 2^127;
// longer sums fold). One pass over cache-sized chunks of each limb takes every
// giant, so a plaintext chunk is read once for both parts and a baby's chunk
// stays in cache for every giant that uses it (the sums are the same integers
// as giant by giant, so the residues are the backend's).
void Run::dot_host(const std::vector<const Giant*>& giants, const std::vector<const u64*>& d,
                   const std::vector<std::vector<backend::DeviceBuffer>>& b0,
                   const std::vector<std::vector<backend::DeviceBuffer>>& b1, const std::vector<u64*>& s0,
                   const std::vector<u64*>& s1) {
  parallel_for(static_cast<size_t>(width), [&](size_t e) {
    const Modulus& m = moduli[e];
    constexpr u64 kChunk = 256;
    Acc128 a0[kChunk], a1[kChunk];
    const size_t off = e * n;
    for (u64 c0 = 0; c0 < n; c0 += kChunk) {
      const u64 len = std::min<u64>(kChunk, n - c0);
      size_t di = 0;
      for (size_t g = 0; g < giants.size(); ++g) {
        for (u64 t = 0; t < len; ++t) a0[t] = Acc128{}, a1[t] = Acc128{};
        int in_acc = 0;
        for (const Term& term : giants[g]->terms) {
          const u64* x0 = b0[term.in][term.baby].data() + off + c0;
          const u64* x1 = b1[term.in][term.baby].data() + off + c0;
          const u64* p = d[di++] + off + c0;
          if (in_acc == 32) {
            for (u64 t = 0; t < len; ++t)
              a0[t] = Acc128{reduce_acc(a0[t], m), 0}, a1[t] = Acc128{reduce_acc(a1[t], m), 0};
            in_acc = 1;
          }
          for (u64 t = 0; t < len; ++t) {
            a0[t].mul_add(x0[t], p[t]);
            a1[t].mul_add(x1[t], p[t]);
          }
          ++in_acc;
        }
        u64* o0 = s0[g] + off + c0;
        u64* o1 = s1[g] + off + c0;
        for (u64 t = 0; t < len; ++t) o0[t] = reduce_acc(a0[t], m), o1[t] = reduce_acc(a1[t], m);
      }
    }
  });
}

// The backend form: one key-switching inner product per giant and up to 32
// terms, the plaintexts as the shared operand (d) and the two baby parts as
// the key halves; longer giants add their partial sums.
void Run::dot(const std::vector<const Giant*>& giants, const std::vector<const u64*>& d,
              const std::vector<std::vector<backend::DeviceBuffer>>& b0,
              const std::vector<std::vector<backend::DeviceBuffer>>& b1, const std::vector<u64*>& s0,
              const std::vector<u64*>& s1) {
  if (host) return dot_host(giants, d, b0, b1, s0, s1);
  std::vector<u64*> o0(width), o1(width);
  size_t di = 0;
  for (size_t g = 0; g < giants.size(); ++g) {
    const auto& terms = giants[g]->terms;
    for (size_t j0 = 0; j0 < terms.size(); j0 += 32) {
      const int count = static_cast<int>(std::min<size_t>(32, terms.size() - j0));
      const bool first = j0 == 0;
      std::vector<const u64*> dd(static_cast<size_t>(width) * count), kb(dd.size()), ka(dd.size());
      for (int e = 0; e < width; ++e) {
        const size_t off = static_cast<size_t>(e) * n;
        o0[e] = (first ? s0[g] : t0.data()) + off;
        o1[e] = (first ? s1[g] : t1.data()) + off;
        for (int j = 0; j < count; ++j) {
          const size_t t = static_cast<size_t>(e) * count + j;
          const Term& term = terms[j0 + j];
          dd[t] = d[di + j0 + j] + off;
          kb[t] = b0[term.in][term.baby].data() + off;
          ka[t] = b1[term.in][term.baby].data() + off;
        }
      }
      be.key_switch_inner(o0.data(), o1.data(), dd.data(), kb.data(), ka.data(), count, nullptr, moduli.data(),
                          static_cast<size_t>(width), n);
      if (!first) {
        add(t0.data(), nullptr, s0[g], width);
        add(t1.data(), nullptr, s1[g], width);
      }
    }
    di += terms.size();
  }
}

// Q diagonals: the c1 part is decomposed as it is, the c0 part enters times P.
// Extended (double hoisting): the c0 part rotates in Q*P as it is (an
// automorphism commutes with the final division by P); only the c1 part
// goes down to Q for its key switch, whose output stays in Q*P.
void Run::giant(long step, u64* acc0, u64* acc1, u64* total0, u64* total1) {
  if (step == 0) {
    if (extended) {
      add(acc0, nullptr, total0, ext);
      add(acc1, nullptr, total1, ext);
    } else {
      add_p_times(acc0, nullptr, total0);
      add_p_times(acc1, nullptr, total1);
    }
    return;
  }
  if (!direct(step)) {
    const u64 *x0 = acc0, *x1 = acc1;
    backend::DeviceBuffer q0, q1;
    if (extended) {
      q0 = be.allocate(q_words);
      q1 = be.allocate(q_words);
      mod_down(be, ctx, acc0, level, q0.data(), false);
      mod_down(be, ctx, acc1, level, q1.data(), false);
      x0 = q0.data();
      x1 = q1.data();
    }
    rotate_composed(x0, x1, step);
    add_p_times(r0.data(), nullptr, total0);
    add_p_times(r1.data(), nullptr, total1);
    return;
  }
  const u64 g = galois_element_for_step(step, n);
  const u32* perm = ctx.galois_perm(g).data();
  if (extended) {
    backend::DeviceBuffer a1 = be.allocate(q_words);
    mod_down(be, ctx, acc1, level, a1.data(), false);
    add(acc0, perm, total0, ext);
    const Decomposition dec = decompose(be, ctx, a1.data(), level);
    inner_product(be, ctx, dec, keys.at(g), perm, t0.data(), t1.data());
  } else {
    const Decomposition dec = decompose(be, ctx, acc1, level);
    inner_product(be, ctx, dec, keys.at(g), perm, t0.data(), t1.data());
    add_p_times(acc0, perm, t0.data());
  }
  add(t0.data(), nullptr, total0, ext);
  add(t1.data(), nullptr, total1, ext);
}

void count_babies(Counts& c, const std::vector<long>& steps, long groups) {
  const long nz = static_cast<long>(std::count_if(steps.begin(), steps.end(), [](long x) { return x != 0; }));
  c.rotations += nz * groups;
  if (nz > 1) c.hoisted += (nz - 1) * groups;
  if (nz) c.decompositions += groups;
}

}  // namespace detail

// ---- the schedule that holds every baby at once ------------------------------

Counts apply(backend::Backend& be, const Tables& ctx, const KeyChain& keys, const Plan& plan, DiagonalStore& diagonals,
             int level, bool extended, bool host_loops, const std::vector<Operand>& in, const std::vector<Output>& out,
             std::size_t work_bytes) {
  const char* op = "apply a linear map";
  if (level < 1 || level > ctx.max_level()) fail(op, "the map's level must be in [1, max_level]");
  if (plan.slots != static_cast<long>(ctx.slots())) fail(op, "the map was planned for another number of slots");
  if (static_cast<int>(plan.babies.size()) != plan.in_cts || static_cast<int>(plan.outputs.size()) != plan.out_cts)
    fail(op, "the plan is malformed");
  if (in.size() % plan.in_cts != 0 || out.size() != in.size() / plan.in_cts * plan.out_cts)
    fail(op, "the inputs and outputs do not form whole groups");
  const int groups = static_cast<int>(in.size() / plan.in_cts);
  detail::Run r(be, ctx, keys, plan, level, extended, host_loops);
  Counts counts;
  for (const auto& giants : plan.outputs)
    for (const auto& g : giants)
      if (g.step) counts.rotations += groups;

  // What the unbounded sequence holds at once: every group's babies, one
  // window of giant sums, every group's total (in Q*P).
  const std::size_t unit = 2 * r.w_words * sizeof(u64);  // a baby or a giant sum of one group
  std::size_t nbabies = 0, widest = 1;
  for (const auto& b : plan.babies) nbabies += b.size();
  for (const auto& o : plan.outputs) widest = std::max(widest, o.size());
  const std::size_t window_max =
      diagonals.window() > 0 ? std::min<std::size_t>(diagonals.window(), widest) : widest;
  const std::size_t all = (static_cast<std::size_t>(groups) * nbabies + window_max) * unit +
                          static_cast<std::size_t>(groups) * 2 * r.ext_words * sizeof(u64);

  if (work_bytes == 0 || all <= work_bytes) {
    // Babies of every group (all are read by every output).
    std::vector<std::vector<std::vector<backend::DeviceBuffer>>> b0(groups), b1(groups);
    for (int g = 0; g < groups; ++g) {
      b0[g].resize(plan.in_cts);
      b1[g].resize(plan.in_cts);
      for (int i = 0; i < plan.in_cts; ++i)
        if (!plan.babies[i].empty()) r.babies(in[g * plan.in_cts + i], plan.babies[i], b0[g][i], b1[g][i]);
    }
    for (int i = 0; i < plan.in_cts; ++i) detail::count_babies(counts, plan.babies[i], groups);
    for (int o = 0; o < plan.out_cts; ++o) {
      const auto& giants = plan.outputs[o];
      std::vector<backend::DeviceBuffer> total0, total1;
      for (int g = 0; g < groups; ++g) {
        total0.push_back(r.zeros(r.ext_words));
        total1.push_back(r.zeros(r.ext_words));
      }
      const int count = static_cast<int>(giants.size());
      const int window = diagonals.window() > 0 ? diagonals.window() : std::max(count, 1);
      std::vector<backend::DeviceBuffer> s0, s1;
      std::vector<u64*> p0, p1;
      for (int k = 0; k < std::min(window, count); ++k) {
        s0.push_back(be.allocate(r.w_words));
        s1.push_back(be.allocate(r.w_words));
        p0.push_back(s0.back().data());
        p1.push_back(s1.back().data());
      }
      for (int g0 = 0; g0 < count; g0 += window) {
        const int g1 = std::min(count, g0 + window);
        const std::vector<const u64*> d = diagonals.fetch(be, o, g0, g1);
        std::vector<const Giant*> part;
        for (int k = g0; k < g1; ++k) part.push_back(&giants[k]);
        for (int g = 0; g < groups; ++g) {
          r.dot(part, d, b0[g], b1[g], p0, p1);
          for (int k = g0; k < g1; ++k)
            r.giant(giants[k].step, s0[k - g0].data(), s1[k - g0].data(), total0[g].data(), total1[g].data());
        }
      }
      for (int g = 0; g < groups; ++g) {
        const Output& y = out[g * plan.out_cts + o];
        mod_down_rescale(be, ctx, total0[g].data(), level, y.o0);
        mod_down_rescale(be, ctx, total1[g].data(), level, y.o1);
      }
    }
    return counts;
  }

  return detail::apply_within(r, diagonals, groups, in, out, work_bytes, counts);
}

}  // namespace ht::bsgs
