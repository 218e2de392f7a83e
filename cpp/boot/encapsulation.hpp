// Sparse-secret encapsulation (Bossuat, Troncoso-Pastoriza, Hubaux 2022):
// bootstrapping switches the ciphertext to a sparse secret s' just before
// ModRaise, so |I| stays small (K ~ 16 for h = 32), and back to the dense s
// right after, so every other key and the security of the chain stay those of
// the dense secret. The s -> s' key lives modulo q_0 * p_0 only.
#pragma once
#include "ckks/ciphertext.hpp"
#include "ckks/keys.hpp"
#include "ckks/resident.hpp"

namespace ht {

// At level 0: the same message under s' instead of s (key switch with p_0).
Ciphertext switch_to_sparse(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct);
// At any level: the same message under s instead of s'.
Ciphertext switch_to_dense(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct);

// The same on device-resident ciphertexts, as backend calls (the host's result
// word for word). The s -> s' key (4N words) is uploaded per call on a GPU;
// the s' -> s key is a switching key kept on the device like the others.
namespace resident {
DeviceCiphertext switch_to_sparse(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct);
DeviceCiphertext switch_to_dense(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct);
}  // namespace resident

}  // namespace ht
