// Rotations on demand. Hoisted (Halevi-Shoup): the ModUp decomposition of c1
// of every ciphertext of a batch is computed at its first rotation and kept,
// so each further rotation costs an inner product with the Galois key and a
// ModDown; the rotated copies are made one step at a time, so memory stays at
// one decomposition per ciphertext. Chained: each rotation starts from the
// previous one of the same ciphertext (a full key switch by the difference of
// the steps), so a sequence of steps with a constant stride needs one key
// instead of one per step. One sequence of backend calls for host and
// device-resident batches (Ct = Ciphertext or DeviceCiphertext).
#pragma once
#include <memory>
#include <vector>

#include "ckks/ciphertext.hpp"
#include "ckks/keys.hpp"
#include "ckks/keyswitch.hpp"
#include "ckks/resident.hpp"
#include "linalg/cost.hpp"

namespace ht::linalg {

template <class Ct>
class BasicRotator {
 public:
  BasicRotator(const Tables& ctx, const KeyChain& keys, const Ct& ct, bool chain = false);
  // The items `items` of the batch rotated by `step`, as a new batch (no level).
  Ct rotate(const std::vector<int>& items, long step, Cost* cost);
  const Ct& source() const { return ct_; }

 private:
  const Tables& ctx_;
  const KeyChain& keys_;
  const Ct& ct_;
  std::vector<Decomposition> dec_;
  std::vector<char> have_;
  bool chain_ = false;
  std::vector<long> cur_step_;
  std::vector<Ct> cur_;
};

using Rotator = BasicRotator<Ciphertext>;
using DeviceRotator = BasicRotator<DeviceCiphertext>;

}  // namespace ht::linalg
