// Key switching as a sequence of coarse Backend ops over SwitchConstants (the
// pieces: decompose, inner product, ModDown; and whole jobs). The CPU backend
// runs key_switch as this sequence; ckks/keyswitch builds on the pieces. Every
// pointer is in the memory of the backend `be`.
//  decompose: INTT, split the primes of Q_level into dnum digits, ModUp each
//             digit to Q_level + P by fast basis conversion, NTT.
//  inner_product: sum_j ext_j * key_j over Q_level + P, optionally through an
//             automorphism (hoisting: decompose once, rotate many times).
//  mod_down:  divide by P with rounding and return to Q_level.
#pragma once
#include <cstddef>

#include "backend/backend.hpp"
#include "backend/switch.hpp"

namespace ht::backend {

struct Decomposition {
  DeviceBuffer ext;  // [digits][level + 1 + alpha][N], NTT domain, in the backend's memory
  int level = 0;
  int digits = 0;
  int alpha = 0;
  int ext_limbs() const { return level + 1 + alpha; }
  const u64* digit(int j, u64 n) const { return ext.data() + static_cast<std::size_t>(j) * ext_limbs() * n; }
};

Decomposition decompose(Backend& be, const SwitchConstants& c, const u64* d_ntt);
// out0, out1: [level + 1 + alpha][N]; kb, ka: pointer lists [ext][digits]
// (limb e, digit j at e * digits + j), e.g. from key_pointers. perm: host memory or null.
void inner_product(Backend& be, const SwitchConstants& c, const Decomposition& dec, const u64* const* kb,
                   const u64* const* ka, const u32* perm, u64* out0, u64* out1);
void key_pointers(const SwitchConstants& c, const SwitchKeyRef& key, const u64** kb, const u64** ka);
// ext [level + 1 + alpha][N] NTT -> out [level + 1][N] NTT, overwritten or added to.
void mod_down(Backend& be, const SwitchConstants& c, const u64* ext, u64* out, bool accumulate);
// ext holding P x + y -> out [level][N] = round((P x + y) / (P q_level)).
void mod_down_rescale(Backend& be, const SwitchConstants& c, const u64* ext, u64* out);
// ext[i] += P * a[i] over the Q limbs 0..level (a: [level + 1][N], NTT).
void mul_p_add(Backend& be, const SwitchConstants& c, const u64* a, u64* ext);

// Backend::key_switch as the sequence of the pieces above (job by job,
// target by target); the CPU backend's implementation.
void key_switch_sequence(Backend& be, const SwitchConstants& c, const SwitchJob* jobs, std::size_t count,
                         bool rescale);
// The checks every implementation of Backend::key_switch makes first.
void check_switch(const SwitchConstants& c, const SwitchJob* jobs, std::size_t count, bool rescale);

}  // namespace ht::backend
