// Hybrid key switching in backend terms (Han-Ki 2020; Kim et al. 2021 for the
// hoisted form): the constants of one (context, level), a key in backend
// memory, and jobs (one decomposition shared by several targets). A backend
// runs a list of jobs as one Backend::key_switch call: the CPU as today's
// sequence of coarse ops (backend/switch_sequence), the CUDA backend as a few
// fused launches over all jobs and targets (backend/switch_fused.hpp) with
// these constants resident on the device. Results agree word for word.
#pragma once
#include <cstddef>
#include <vector>

#include "core/ntt_tables.hpp"
#include "core/rns_view.hpp"

namespace ht::backend {

// Built once per (context, level) by ckks/tables and never changed: every
// pointer stays valid while the context lives. `serial` is unique in the
// process, so a backend may key a resident copy by it.
struct SwitchConstants {
  u64 serial = 0;
  u64 n = 0;
  int level = 0, alpha = 0, digits = 0;
  int ext_limbs() const { return level + 1 + alpha; }
  std::vector<int> digit_begin, digit_end;       // [digits]: the Q limbs [begin, end) of digit j
  std::vector<const NttTables*> tables;          // [ext]: q_0 .. q_level, then the P primes
  std::vector<Modulus> moduli;                   // [ext]
  std::vector<kernels::BasisConvView> modup;     // [digits]: digit j -> the other ext limbs, ascending
  kernels::BasisConvView moddown{};              // P -> Q_level
  std::vector<ShoupConst> p_inv, p_mod;          // [level + 1]: P^-1 and P mod q_i
  kernels::BasisConvView moddown_rescale{};      // {q_level} + P -> Q_(level-1) (nsrc = 0 at level 0)
  std::vector<ShoupConst> pq_inv;                // [level]: (P q_level)^-1 mod q_i
};

// An expanded switching key in the memory of the backend that runs the
// switch: [digits][2][limbs][n], (b_j, a_j), limbs = Q_key_level + P.
struct SwitchKeyRef {
  const u64* data = nullptr;
  int level = 0;   // the highest level the key serves
  int limbs = 0;   // level + 1 + alpha
  // The key limb of ext limb e of a switch at `at` (Q limbs first, then P).
  std::size_t limb(int e, int at) const {
    return static_cast<std::size_t>(e <= at ? e : level + 1 + (e - at - 1));
  }
};

// One output of a job (level l = SwitchConstants::level, phi = perm or identity):
//   plain:   out0 = phi(c0) + ModDown_P(<phi(D(d)), b>),  out1 = phi(c1) + ModDown_P(<phi(D(d)), a>)
//            (a null c adds nothing); out: [l + 1][n]
//   rescale: out0 = ModDown_{P q_l}(P c0 + <D(d), b>), out1 likewise with c1 and a; out: [l][n];
//            c0, c1 required, no perm.
// out may alias c without a perm; it never aliases d or another target's out.
struct SwitchTarget {
  SwitchKeyRef key;
  const u32* perm = nullptr;  // host memory, n entries (core/galois), or null
  u64 galois_elt = 0;         // the element perm belongs to, or 0: a backend may then keep perm resident
  const u64* c0 = nullptr;
  const u64* c1 = nullptr;
  u64* out0 = nullptr;
  u64* out1 = nullptr;
};

// d: [l + 1][n], NTT domain, decomposed once for all of its targets.
struct SwitchJob {
  const u64* d = nullptr;
  std::vector<SwitchTarget> targets;
};

}  // namespace ht::backend
