// Hybrid key switching (Han-Ki 2020; Kim et al. 2021 for the hoisted form)
// over a Tables context: the pieces (backend/switch_sequence over
// Tables::switch_constants, plus compact keys, whose a_j are regenerated on
// the host) and whole switches, which go through Backend::key_switch (the CPU:
// the same pieces; CUDA: fused passes with resident constants). The host
// evaluator runs them on the CPU backend over host memory, the
// device-resident evaluator (ckks/resident) on any backend over its memory.
// Adds noise of the order of dnum * N * sigma * (digit / P) + rounding; the
// presets keep P >= the largest digit. Every pointer is in the memory of the
// backend `be` (host memory for backend::cpu()).
#pragma once
#include <vector>

#include "backend/backend.hpp"
#include "backend/switch_sequence.hpp"
#include "ckks/keys.hpp"
#include "ckks/tables.hpp"

namespace ht {

using Decomposition = backend::Decomposition;

Decomposition decompose(backend::Backend& be, const Tables& ctx, const u64* d_ntt, int level);

// Throws when `key` does not serve `level` (a trimmed bootstrapping key).
void check_key_level(const KeyView& key, int level);
// The key as Backend::key_switch reads it (not for a compact key).
backend::SwitchKeyRef switch_key(const KeyView& key);

// out0, out1: [level + 1 + alpha][N]. `perm` (nullable, host memory) permutes
// the decomposition's NTT values first (a Galois automorphism).
void inner_product(backend::Backend& be, const Tables& ctx, const Decomposition& dec, const KeyView& key,
                   const u32* perm, u64* out0, u64* out1);

// ext: [level + 1 + alpha][N] NTT. out: [level + 1][N] NTT, overwritten
// (or added to when `accumulate`).
void mod_down(backend::Backend& be, const Tables& ctx, const u64* ext, int level, u64* out, bool accumulate);

// ModDown and rescale fused: ext [level + 1 + alpha][N] NTT holding P * x + y
// -> out [level][N] NTT, round((P * x + y) / (P * q_level)). Saves the
// separate rescale's inverse and forward NTTs after relinearization.
void mod_down_rescale(backend::Backend& be, const Tables& ctx, const u64* ext, int level, u64* out);

// ext[i] += P * c[i] over the Q limbs 0..level of ext (c: [level + 1][N], NTT).
void mul_p_add(backend::Backend& be, const Tables& ctx, const u64* c, int level, u64* ext);

// -- whole key switches of one ciphertext's polynomials (level `level`) ------
// (c0, c1, c2) -> (o0, o1) = (c0, c1) + ModDown(<D(c2), key>): same level.
void relinearize_poly(backend::Backend& be, const Tables& ctx, const KeyView& key, const u64* c0, const u64* c1,
                      const u64* c2, int level, u64* o0, u64* o1);
// The same and a rescale in one ModDown by P * q_level: o0, o1 at level - 1.
void relinearize_rescale_poly(backend::Backend& be, const Tables& ctx, const KeyView& key, const u64* c0,
                              const u64* c1, const u64* c2, int level, u64* o0, u64* o1);
// Galois automorphisms of (c0, c1) sharing one decomposition of c1 (hoisting):
// target r gets (phi_r(c0) + ModDown(ks0_r), ModDown(ks1_r)).
struct GaloisTarget {
  KeyView key;
  const u32* perm;  // host memory: the NTT-domain permutation of the element
  u64* o0;
  u64* o1;
  u64 galois_elt = 0;  // the element of perm (lets a device keep perm resident)
};
void galois_hoisted(backend::Backend& be, const Tables& ctx, const u64* c0, const u64* c1, int level,
                    const std::vector<GaloisTarget>& targets);

// Host-memory forms on the CPU backend (the circuits' hoisted code paths).
Decomposition decompose(const Tables& ctx, const u64* d_ntt, int level);
void inner_product(const Tables& ctx, const Decomposition& dec, const SwitchKey& key, const u32* perm, u64* out0,
                   u64* out1);
void mod_down(const Tables& ctx, const u64* ext, int level, u64* out, bool accumulate);
void mod_down_rescale(const Tables& ctx, const u64* ext, int level, u64* out);

}  // namespace ht
