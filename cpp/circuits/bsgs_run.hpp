// One application of the baby-step giant-step engine (circuits/bsgs): its
// state (backend, moduli of the extended limbs, held rotation keys, scratch)
// and its steps (the baby rotations of one input, the plaintext inner
// products of the giants, one giant's rotation into an output's total). The
// steps are defined in bsgs.cpp with the schedule that holds every baby at
// once; bsgs_schedule.cpp holds the schedule within a workspace. Internal to
// the engine: nothing outside circuits/bsgs*.cpp includes it.
#pragma once
#include <map>
#include <memory>
#include <vector>

#include "backend/kernels/elementwise.hpp"
#include "circuits/bsgs.hpp"
#include "ckks/keyswitch.hpp"
#include "core/galois.hpp"
#include "core/naf.hpp"
#include "runtime/parallel.hpp"

namespace ht::bsgs::detail {

// Prime index of limb e of an extended (Q_level + P) polynomial.
inline int ext_prime_index(const Tables& ctx, int level, int e) { return e <= level ? e : ctx.p_index(e - level - 1); }

// The state of one application: the backend, the moduli of the extended
// limbs, the rotation keys (held, so a wider key replacing one meanwhile
// cannot free it) and scratch polynomials.
struct Run {
  backend::Backend& be;
  const Tables& ctx;
  const Plan& plan;
  bool host;  // host memory on the CPU backend: fused loops over the same integers
  bool extended;
  u64 n;
  int level, qn, ext, width;  // width: limbs of the babies and giant sums
  std::size_t q_words, ext_words, w_words;
  std::vector<Modulus> moduli;  // extended limbs
  std::vector<std::shared_ptr<const SwitchKey>> held;
  std::map<u64, KeyView> keys;
  std::map<long, std::vector<u64>> composed;  // step -> power-of-two elements (steps without their own key)
  backend::DeviceBuffer scratch, r0, r1, t0, t1;

  Run(backend::Backend& b, const Tables& c, const KeyChain& chain, const Plan& p, int lvl, bool ext_diags,
      bool host_loops)
      : be(b), ctx(c), plan(p), host(host_loops), extended(ext_diags), n(c.n()), level(lvl), qn(lvl + 1),
        ext(lvl + 1 + c.alpha()), width(ext_diags ? ext : qn), q_words(static_cast<std::size_t>(qn) * n),
        ext_words(static_cast<std::size_t>(ext) * n), w_words(static_cast<std::size_t>(width) * n) {
    for (int e = 0; e < ext; ++e) moduli.push_back(ctx.modulus(ext_prime_index(ctx, level, e)));
    auto want = [&](u64 g) {
      if (keys.count(g)) return;
      held.push_back(chain.galois_key(g));
      keys.emplace(g, chain.device_key(held.back(), be));
    };
    for (long step : plan.rotation_steps()) {
      const u64 g = galois_element_for_step(step, n);
      if (chain.has_galois_key(g)) {
        want(g);
        continue;
      }
      std::vector<u64> elts;
      for (long t : power_of_two_terms(step, static_cast<long>(ctx.slots()))) {
        elts.push_back(galois_element_for_step(t, n));
        want(elts.back());
      }
      composed.emplace(step, std::move(elts));
    }
    scratch = be.allocate(ext_words);
    t0 = be.allocate(ext_words);
    t1 = be.allocate(ext_words);
  }

  bool direct(long step) const { return !composed.count(step); }

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

  // (x0, x1) over Q rotated by a step without its own key: its power-of-two
  // elements one after another (full key switches), as the evaluator's
  // composed rotations; the result in (r0, r1).
  void rotate_composed(const u64* x0, const u64* x1, long step) {
    if (r0.size() == 0) {
      r0 = be.allocate(q_words);
      r1 = be.allocate(q_words);
    }
    backend::DeviceBuffer a0 = be.allocate(q_words), a1 = be.allocate(q_words);
    be.copy(a0.data(), x0, q_words);
    be.copy(a1.data(), x1, q_words);
    for (u64 g : composed.at(step)) {
      galois_hoisted(be, ctx, a0.data(), a1.data(), level,
                     {GaloisTarget{keys.at(g), ctx.galois_perm(g).data(), r0.data(), r1.data(), g}});
      std::swap(a0, r0);
      std::swap(a1, r1);
    }
    std::swap(a0, r0);
    std::swap(a1, r1);
  }

  // The baby rotations of one input (c0, c1), in the width of the diagonals:
  // (P phi_j(c0) + ks0, ks1) in Q*P, or ModDown of it in Q.
  void babies(const Operand& c, const std::vector<long>& steps, std::vector<backend::DeviceBuffer>& b0,
              std::vector<backend::DeviceBuffer>& b1);

  // For the giants `giants` (terms of giant k: diagonals d[start[k]..]):
  //   s0[k] = sum_t pt_t * baby0[t],  s1[k] = sum_t pt_t * baby1[t]   over `width` limbs.
  void dot(const std::vector<const Giant*>& giants, const std::vector<const u64*>& d,
           const std::vector<std::vector<backend::DeviceBuffer>>& b0,
           const std::vector<std::vector<backend::DeviceBuffer>>& b1, const std::vector<u64*>& s0,
           const std::vector<u64*>& s1);
  void dot_host(const std::vector<const Giant*>& giants, const std::vector<const u64*>& d,
                const std::vector<std::vector<backend::DeviceBuffer>>& b0,
                const std::vector<std::vector<backend::DeviceBuffer>>& b1, const std::vector<u64*>& s0,
                const std::vector<u64*>& s1);

  // total += rot_step(acc) in Q*P (acc in the width of the diagonals; it may be overwritten).
  void giant(long step, u64* acc0, u64* acc1, u64* total0, u64* total1);
};

// Babies `steps` of one input made from one decomposition, in every one of `groups` groups.
void count_babies(Counts& c, const std::vector<long>& steps, long groups);

// apply's sequence within work_bytes, for a map whose babies (every group's)
// do not all fit (bsgs_schedule.cpp); `counts` holds the giants' rotations.
Counts apply_within(Run& r, DiagonalStore& diagonals, int groups, const std::vector<Operand>& in,
                    const std::vector<Output>& out, std::size_t work_bytes, Counts counts);

}  // namespace ht::bsgs::detail
