// Linear maps on the slot vector, given by their nonzero generalized
// diagonals: y[i] = sum_d diag_d[i] * x[(i + d) mod slots].
// Evaluated by the baby-step giant-step engine (circuits/bsgs, one input and
// one output): y = sum_g rot_g( sum_j rot_{-g}(diag_{g+j}) * rot_j(x) ) with
// the baby rotations hoisted and the diagonals encoded once, pre-rotated.
// Cost: |babies| + |giants| - 2 key switches, |diagonals| plaintext
// products, one level. Host ciphertexts run it on the CPU backend,
// device-resident ones (ckks/resident) on theirs, with the diagonals uploaded
// once per device; the results agree word for word.
#pragma once
#include <complex>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/backend.hpp"
#include "circuits/bsgs.hpp"
#include "ckks/encoder.hpp"
#include "ckks/keys.hpp"
#include "ckks/resident.hpp"

namespace ht {

// Copies of a transform's diagonals in device memory, one per backend,
// shared by the copies of the transform (its plaintexts never change).
using DeviceDiagonals = bsgs::DeviceCopies;

struct LinearTransform {
  int level = 0;          // the level the diagonals are encoded for
  bool extended = true;   // diagonals over Q*P (double hoisting) or over Q only (see below)
  long n1 = 1;            // baby-step size
  double norm_inf = 0;    // max row sum of |entries|: bounds |y| by norm_inf * |x|
  double input_scale = 0; // the scale the diagonals were encoded against
  std::vector<long> babies;                       // distinct baby steps j
  std::vector<long> giants;                       // distinct giant steps g
  // groups[g_index]: (index into babies, plaintext of rot_{-g}(diag_{g+j}))
  std::vector<std::vector<std::pair<int, Plaintext>>> groups;
  std::vector<long> rotation_steps() const;       // keys needed (nonzero babies and giants)
  int diagonals() const;
  // The diagonal plaintexts, group by group in order, in the memory of `be`:
  // the plaintexts themselves on the CPU; on a device, one copy uploaded on
  // first use and kept for the transform's lifetime.
  std::vector<const u64*> diagonal_data(backend::Backend& be) const;
  // Bytes of the copies held in device memory (all devices).
  std::size_t device_bytes() const;
  // The engine's plan (one input, one output; diagonal ids in group order).
  bsgs::Plan plan() const;
  std::shared_ptr<DeviceDiagonals> device = std::make_shared<DeviceDiagonals>();
};

// diagonals: step d in [0, slots) -> slots values. n1 = 0 chooses the baby
// step that minimises the cost under double hoisting (cheap babies, see .cpp).
// input_scale: the scale of the ciphertexts it will meet (0: the canonical
// scale of `level`); the output always has the canonical scale of level - 1.
// extended = false keeps the diagonals over the level + 1 primes of Q only:
// the baby rotations then come down to Q (one ModDown each) before the
// products. Worth it at low levels, where P's alpha limbs are most of a
// diagonal (SlotToCoeff at levels 3..1 of n16-boot: 6 of 8-10 limbs).
LinearTransform encode_linear_transform(const Encoder& encoder,
                                        const std::map<long, std::vector<std::complex<double>>>& diagonals,
                                        int level, long n1 = 0, double input_scale = 0, bool extended = true);

// One level: input at the transform's level or above (brought down first).
Ciphertext apply_linear_transform(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct,
                                  const LinearTransform& lt);

namespace resident {
// The same on a device-resident ciphertext, on its backend: one level, the
// host's result word for word.
DeviceCiphertext apply_linear_transform(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct,
                                        const LinearTransform& lt);
}  // namespace resident

}  // namespace ht
