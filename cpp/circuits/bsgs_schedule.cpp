// The bounded schedule of the baby-step giant-step engine (circuits/bsgs):
// a map applied within a workspace of work_bytes. The giant sums of a few
// outputs are held at once, each input's babies are made a chunk at a time
// (one decomposition per chunk) and each chunk's products are added into the
// sums of the terms that read it: the residues of the unbounded schedule word
// for word (the sums are exact mod q), more decompositions.
#include <algorithm>
#include <set>

#include "circuits/bsgs_run.hpp"

namespace ht::bsgs::detail {

namespace {

// Outputs whose giant sums (`per` units each) are held together, at most `cap`
// units per group where possible: outputs that read the same inputs go
// together, so an input's babies are made for as few groups as possible.
std::vector<std::vector<int>> output_groups(const Plan& p, size_t cap, size_t per) {
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
    size_t e = k, units = 0;  // the class of outputs reading the same inputs
    while (e < order.size() && reads[order[e]] == reads[order[k]]) units += p.outputs[order[e++]].size() * per;
    if (units <= cap) {  // the whole class: with the group being filled, or a new one
      if (groups.empty() || held + units > cap) {
        groups.emplace_back();
        held = 0;
      }
      groups.back().insert(groups.back().end(), order.begin() + k, order.begin() + e);
      held += units;
    } else {  // split the class into near-equal parts (their babies are made once per part)
      const size_t parts = (units + cap - 1) / cap, count = e - k;
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

Counts apply_within(Run& r, DiagonalStore& diagonals, int groups, const std::vector<Operand>& in,
                    const std::vector<Output>& out, std::size_t work_bytes, Counts counts) {
  backend::Backend& be = r.be;
  const Tables& ctx = r.ctx;
  const Plan& plan = r.plan;
  const int level = r.level;
  const std::size_t unit = 2 * r.w_words * sizeof(u64);  // a baby or a giant sum of one group
  // Within work_bytes (in units of one group's baby): the giant sums of a few
  // outputs held at once (every group's), each input's babies made a chunk at a
  // time (every group's), each chunk's products added into the sums of the
  // terms that read it; then each output's giants, one group's total at a time.
  const std::size_t cap = std::max<std::size_t>(2, work_bytes / unit);
  constexpr std::size_t kMinChunk = 32;
  const std::size_t sums_cap = cap > 2 * kMinChunk ? cap - kMinChunk : cap / 2;
  const std::size_t per = static_cast<std::size_t>(groups);
  backend::DeviceBuffer u0 = be.allocate(r.w_words), u1 = be.allocate(r.w_words);  // a partial sum
  for (const auto& og : output_groups(plan, sums_cap, per)) {
    // sums[k][giant * groups + group], written[...]: whether the sum holds a partial sum yet.
    std::vector<std::vector<backend::DeviceBuffer>> a0(og.size()), a1(og.size());
    std::vector<std::vector<char>> written(og.size());
    std::vector<std::set<int>> need(plan.in_cts);  // baby indices of each input this output group reads
    std::size_t held = 0;
    for (size_t k = 0; k < og.size(); ++k) {
      const auto& giants = plan.outputs[og[k]];
      for (size_t j = 0; j < giants.size() * per; ++j) {
        a0[k].push_back(be.allocate(r.w_words));
        a1[k].push_back(be.allocate(r.w_words));
      }
      written[k].assign(giants.size() * per, 0);
      held += giants.size() * per;
      for (const auto& giant : giants)
        for (const auto& t : giant.terms) need[t.in].insert(t.baby);
    }
    // Babies per chunk: what is left after the sums, a partial sum and a total (Q*P).
    const std::size_t chunk = std::max<std::size_t>(1, cap > held + 4 ? (cap - held - 4) / per : 1);
    for (int i = 0; i < plan.in_cts; ++i) {
      if (need[i].empty()) continue;
      const std::vector<int> ids(need[i].begin(), need[i].end());
      std::vector<int> pos(plan.babies[i].size(), -1);  // baby index -> position in the chunk
      for (size_t s = 0; s < ids.size(); s += chunk) {
        const size_t e = std::min(ids.size(), s + chunk);
        std::vector<long> steps;
        for (size_t k = s; k < e; ++k) {
          pos[ids[k]] = static_cast<int>(k - s);
          steps.push_back(plan.babies[i][ids[k]]);
        }
        std::vector<std::vector<std::vector<backend::DeviceBuffer>>> c0(groups), c1(groups);
        for (int g = 0; g < groups; ++g) {
          c0[g].resize(plan.in_cts);
          c1[g].resize(plan.in_cts);
          r.babies(in[g * plan.in_cts + i], steps, c0[g][i], c1[g][i]);
        }
        count_babies(counts, steps, groups);
        for (size_t k = 0; k < og.size(); ++k) {
          const auto& giants = plan.outputs[og[k]];
          for (size_t j = 0; j < giants.size(); ++j) {
            Giant sub{giants[j].step, {}};  // the giant's terms that read this chunk, babies renumbered
            std::vector<int> idx;
            for (size_t t = 0; t < giants[j].terms.size(); ++t) {
              const Term& term = giants[j].terms[t];
              if (term.in != i || pos[term.baby] < 0) continue;
              sub.terms.push_back({i, pos[term.baby], term.diag});
              idx.push_back(static_cast<int>(t));
            }
            if (idx.empty()) continue;
            const std::vector<const u64*> d = diagonals.fetch_terms(be, og[k], static_cast<int>(j), idx);
            for (int g = 0; g < groups; ++g) {
              const size_t at = j * per + g;
              const bool first = !written[k][at];
              r.dot({&sub}, d, c0[g], c1[g], {first ? a0[k][at].data() : u0.data()},
                    {first ? a1[k][at].data() : u1.data()});
              if (!first) {
                r.add(u0.data(), nullptr, a0[k][at].data(), r.width);
                r.add(u1.data(), nullptr, a1[k][at].data(), r.width);
              }
              written[k][at] = 1;
            }
          }
        }
        for (size_t k = s; k < e; ++k) pos[ids[k]] = -1;
      }
    }
    for (size_t k = 0; k < og.size(); ++k) {
      const auto& giants = plan.outputs[og[k]];
      for (int g = 0; g < groups; ++g) {
        backend::DeviceBuffer total0 = r.zeros(r.ext_words), total1 = r.zeros(r.ext_words);
        for (size_t j = 0; j < giants.size(); ++j) {
          const size_t at = j * per + g;
          if (!written[k][at]) continue;  // a giant without terms adds nothing
          r.giant(giants[j].step, a0[k][at].data(), a1[k][at].data(), total0.data(), total1.data());
        }
        const Output& y = out[g * plan.out_cts + og[k]];
        mod_down_rescale(be, ctx, total0.data(), level, y.o0);
        mod_down_rescale(be, ctx, total1.data(), level, y.o1);
      }
      a0[k].clear();  // this output's sums are no longer needed
      a1[k].clear();
    }
  }
  return counts;
}

}  // namespace ht::bsgs::detail
