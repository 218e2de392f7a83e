#include "backend/cpu_switch.hpp"

#include <atomic>
#include <vector>

#include "backend/cpu_ntt.hpp"
#include "backend/switch_fused.hpp"
#include "backend/switch_sequence.hpp"
#include "core/error.hpp"
#include "runtime/parallel.hpp"

namespace ht::backend {

namespace {

std::atomic<bool> fused_flag{false};

struct CpuLaunch {
  const SwitchConstants& c;
  template <class Body>
  void for_each(u64 count, const Body& body) {
    constexpr u64 chunk = 4096;
    parallel_for(static_cast<std::size_t>((count + chunk - 1) / chunk), [&](std::size_t ch) {
      const u64 end = std::min<u64>(count, (ch + 1) * chunk);
      for (u64 i = ch * chunk; i < end; ++i) body(i);
    });
  }
  void ntt(const kernels::LimbGrid& g, u64 limbs, bool inverse) {
    parallel_for(static_cast<std::size_t>(limbs), [&](std::size_t l) {
      int table = 0;
      u64* a = g.limb(l, table);
      if (a == nullptr) return;
      if (inverse) ht::cpu::ntt_inverse(a, *c.tables[table]);
      else ht::cpu::ntt_forward(a, *c.tables[table]);
    });
  }
};

}  // namespace

bool set_cpu_fused_switch(bool on) { return fused_flag.exchange(on); }
bool cpu_fused_switch() { return fused_flag.load(); }

void cpu_fused_key_switch(Backend& be, const SwitchConstants& c, const SwitchJob* jobs, std::size_t count,
                          bool rescale) {
  check_switch(c, jobs, count, rescale);
  if (count == 0) return;
  const int widest = std::max(c.digit_end[0] - c.digit_begin[0], c.alpha + 1);
  if (widest > kernels::kMaxSwitchSources) fail("key switch", "at most 64 limbs per digit");
  const kernels::SwitchConstView cv{c.n,           c.level,          c.alpha,        c.digits,
                                    c.digit_begin.data(), c.digit_end.data(), c.moduli.data(), c.modup.data(),
                                    c.moddown,     c.p_inv.data(),   c.p_mod.data(), c.moddown_rescale,
                                    c.pq_inv.data()};
  std::vector<const u64*> d;
  std::vector<kernels::SwitchTargetView> targets;
  for (std::size_t j = 0; j < count; ++j) {
    d.push_back(jobs[j].d);
    for (const SwitchTarget& t : jobs[j].targets) targets.push_back(fused::target_view(t, j, t.perm));
  }
  u64 words = 0;
  for (std::size_t j = 0; j < count; ++j) words += fused::scratch_words(c, jobs[j].targets.size(), rescale);
  DeviceBuffer block = be.allocate(words);
  kernels::SwitchScratch s = fused::carve(c, block.data(), count, targets.size(), rescale);
  s.d = d.data();
  s.targets = targets.data();
  CpuLaunch launch{c};
  fused::run(launch, cv, s, count, targets.size());
}

}  // namespace ht::backend
