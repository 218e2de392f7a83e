// Sums of products of rotated ciphertexts, the inner loop of encrypted
// matrix products (Jiang-Kim-Lauter-Song 2018 style, with hoisting and lazy
// relinearization):
//   out_o = sum_rounds rot( sum_{(o, a, b) in round} rot(A_a, a_step) (x) rot(B_b, b_step), outer )
// The rotations of every ciphertext share one decomposition (Rotator); the
// tensor products of the rounds with one `outer` step are accumulated in
// degree 2, relinearized once and rotated by `outer` (a giant step: with
// rot(x, u) (x) rot(y, v) = rot(rot(x, u - w) (x) rot(y, v - w), w), a loop over
// t = g T + b needs T distinct rotations of one operand instead of n). One
// rescale per output at the end: the sum consumes exactly one level. Host and
// device-resident batches run one sequence (the device's as backend calls).
#pragma once
#include <vector>

#include "ckks/ciphertext.hpp"
#include "ckks/keys.hpp"
#include "ckks/resident.hpp"
#include "linalg/cost.hpp"

namespace ht::linalg {

struct BilinearTerm {
  int out, a, b;
};
struct BilinearRound {
  long a_step = 0, b_step = 0, outer = 0;
  std::vector<BilinearTerm> terms;
};

// A and B are batches (items addressed by a and b); both are brought to the
// lower of their levels first. The result is a batch of `outputs` items.
// chain_a / chain_b: rotate that operand step after step from its previous
// rotation (keys for the step differences only) instead of hoisting.
Ciphertext bilinear_sum(const Tables& ctx, const KeyChain& keys, const Ciphertext& A, const Ciphertext& B,
                        const std::vector<BilinearRound>& rounds, int outputs, Cost* cost, bool chain_a = false,
                        bool chain_b = false);
DeviceCiphertext bilinear_sum(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& A,
                              const DeviceCiphertext& B, const std::vector<BilinearRound>& rounds, int outputs,
                              Cost* cost, bool chain_a = false, bool chain_b = false);
// The rotation steps bilinear_sum will use, in its order of work.
std::vector<long> bilinear_steps(long slots, const std::vector<BilinearRound>& rounds, bool chain_a, bool chain_b);

// x <- x + rot(x, s) for s in steps, in order (replication and folding by
// doubling). No level.
Ciphertext rotate_sum(const Tables& ctx, const KeyChain& keys, const Ciphertext& x, const std::vector<long>& steps,
                      Cost* cost);
DeviceCiphertext rotate_sum(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& x,
                            const std::vector<long>& steps, Cost* cost);

}  // namespace ht::linalg
