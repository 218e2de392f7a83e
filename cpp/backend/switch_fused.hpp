// The fused key switch: every job and target of one Backend::key_switch call
// in a fixed number of passes, whatever the number of ciphertexts, digits or
// rotations (5 element passes and 4 batched NTTs):
//   copy d -> coef, INTT(coef)            all jobs' limbs
//   ModUp of every digit (own limbs copied), NTT of the converted limbs
//   inner product of every target (through its permutation; + P c when rescaling)
//   INTT of the P limbs (rescale: q_level and P), ModDown conversion, NTT
//   tail: out = [phi(c)] + (acc - conv) * P^-1   (rescale: * (P q_level)^-1)
// Host code over a launcher L with
//   L.for_each(count, body)            body(i) for i in [0, count)
//   L.ntt(grid, limbs, inverse)        the NTT of every limb of a kernels::LimbGrid
// The CUDA backend launches it on the GPU; cpu_switch.cpp runs the same
// bodies in CPU loops, so the CPU tests check the arithmetic the GPU runs.
#pragma once
#include <vector>

#include "backend/kernels/switch.hpp"
#include "backend/switch.hpp"

namespace ht::backend::fused {

using kernels::LimbGrid;
using kernels::SwitchConstView;
using kernels::SwitchScratch;

struct CopyInputBody {
  SwitchConstView c;
  SwitchScratch s;
  HT_HD void operator()(u64 idx) const { kernels::switch_copy_input(c, s, idx); }
};

struct ModUpBody {  // idx over jobs x digits x n
  SwitchConstView c;
  SwitchScratch s;
  HT_HD void operator()(u64 idx) const {
    const u64 jd = idx / c.n, job = jd / static_cast<u64>(c.digits);
    u64 y[kernels::kMaxSwitchSources];
    kernels::switch_modup(c, s, job, static_cast<int>(jd - job * c.digits), idx - jd * c.n, y);
  }
};

struct InnerBody {  // idx over targets x el x n
  SwitchConstView c;
  SwitchScratch s;
  HT_HD void operator()(u64 idx) const {
    const u64 te = idx / c.n, t = te / static_cast<u64>(c.ext_limbs());
    kernels::switch_inner(c, s, t, static_cast<int>(te - t * c.ext_limbs()), idx - te * c.n);
  }
};

struct ModDownConvertBody {  // idx over targets x 2 x n
  SwitchConstView c;
  SwitchScratch s;
  HT_HD void operator()(u64 idx) const {
    const u64 tp = idx / c.n;
    u64 y[kernels::kMaxSwitchSources];
    kernels::switch_moddown_convert(c, s, tp / 2, static_cast<int>(tp % 2), idx - tp * c.n, y);
  }
};

struct TailBody {  // idx over targets x 2 x nout x n
  SwitchConstView c;
  SwitchScratch s;
  HT_HD void operator()(u64 idx) const {
    const u64 nout = static_cast<u64>(s.nout(c));
    const u64 li = idx / c.n, tp = li / nout;
    kernels::switch_moddown_tail(c, s, tp / 2, static_cast<int>(tp % 2), static_cast<int>(li - tp * nout),
                                 idx - li * c.n);
  }
};

// Scratch words of one job with `targets` targets.
inline u64 scratch_words(const SwitchConstants& c, u64 targets, bool rescale) {
  const u64 el = static_cast<u64>(c.ext_limbs()), nq = static_cast<u64>(c.level + 1);
  const u64 nout = rescale ? nq - 1 : nq;
  return (nq + static_cast<u64>(c.digits) * el + targets * 2 * (el + nout)) * c.n;
}

// The scratch of `jobs` jobs and `targets` targets from one block of
// scratch_words(...) summed over the jobs.
inline SwitchScratch carve(const SwitchConstants& c, u64* block, u64 jobs, u64 targets, bool rescale) {
  const u64 n = c.n, el = static_cast<u64>(c.ext_limbs()), nq = static_cast<u64>(c.level + 1);
  SwitchScratch s{};
  s.coef = block;
  s.ext = s.coef + jobs * nq * n;
  s.acc = s.ext + jobs * static_cast<u64>(c.digits) * el * n;
  s.conv = s.acc + targets * 2 * el * n;
  s.rescale = rescale;
  return s;
}

// The view of one target; perm in the launcher's memory.
inline kernels::SwitchTargetView target_view(const SwitchTarget& t, u64 job, const u32* perm) {
  return kernels::SwitchTargetView{t.key.data, t.key.level, t.key.limbs, perm, t.c0, t.c1, t.out0, t.out1, job};
}

template <class L>
void run(L& launch, const SwitchConstView& c, const SwitchScratch& s, u64 jobs, u64 targets) {
  const u64 n = c.n;
  const u64 el = static_cast<u64>(c.ext_limbs()), nq = static_cast<u64>(c.level + 1);
  const u64 nout = static_cast<u64>(s.nout(c));
  launch.for_each(jobs * nq * n, CopyInputBody{c, s});
  launch.ntt(LimbGrid{s.coef, n, nq, nq, 0, 0, nullptr, nullptr}, jobs * nq, true);
  launch.for_each(jobs * static_cast<u64>(c.digits) * n, ModUpBody{c, s});
  launch.ntt(LimbGrid{s.ext, n, el, el, 0, c.digits, c.digit_begin, c.digit_end}, jobs * c.digits * el, false);
  launch.for_each(targets * el * n, InnerBody{c, s});
  const int first = s.rescale ? c.level : c.level + 1;
  const u64 np = el - static_cast<u64>(first);
  launch.ntt(LimbGrid{s.acc, n, np, el, first, 0, nullptr, nullptr}, targets * 2 * np, true);
  launch.for_each(targets * 2 * n, ModDownConvertBody{c, s});
  launch.ntt(LimbGrid{s.conv, n, nout, nout, 0, 0, nullptr, nullptr}, targets * 2 * nout, false);
  launch.for_each(targets * 2 * nout * n, TailBody{c, s});
}

}  // namespace ht::backend::fused
