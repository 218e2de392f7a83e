// Regrouping the items of ciphertext batches (copies, no arithmetic): the
// linalg layer addresses the ciphertexts of a blocked matrix by index.
#pragma once
#include <utility>
#include <vector>

#include "ckks/ciphertext.hpp"
#include "ckks/resident.hpp"
#include "ckks/tables.hpp"

namespace ht::linalg {

// The items idx[0], idx[1], ... of `ct`, as a new batch.
Ciphertext gather(const Tables& ctx, const Ciphertext& ct, const std::vector<int>& idx);
// A batch made of items (batch, item); all at one level, size and scale.
Ciphertext assemble(const Tables& ctx, const std::vector<std::pair<const Ciphertext*, int>>& items);
// The same on a device-resident batch (device-to-device copies).
DeviceCiphertext gather(const Tables& ctx, const DeviceCiphertext& ct, const std::vector<int>& idx);
DeviceCiphertext assemble(const Tables& ctx, const std::vector<std::pair<const DeviceCiphertext*, int>>& items);
// A batch of `count` zero ciphertexts shaped like `like`.
Ciphertext zeros_like(const Tables& ctx, const Ciphertext& like, int count);

}  // namespace ht::linalg
