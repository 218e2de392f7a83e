// The first and the glue steps of CKKS bootstrapping (Cheon-Han-Kim-Kim-Song
// 2018): ModRaise lifts a ciphertext from q_0 to the whole chain Q_L; it then
// decrypts to t = m + q_0 * I with a small integer polynomial I (|I| <~ K,
// set by the secret's Hamming weight), which EvalMod removes.
#pragma once
#include "ckks/ciphertext.hpp"
#include "ckks/resident.hpp"
#include "ckks/tables.hpp"

namespace ht {

// Keeps limb q_0 of every polynomial and lifts its centered residues to all
// primes of Q_L. Level L, same scale; the value bound is no longer valid.
Ciphertext mod_raise(const Tables& ctx, const Ciphertext& ct);

// Multiplies every slot by i (the monomial X^(N/2)) or by -i: exact, no level.
Ciphertext mul_by_i(const Tables& ctx, const Ciphertext& ct, bool negative);

// The same on device-resident ciphertexts, as backend calls (the host's result
// word for word).
namespace resident {
DeviceCiphertext mod_raise(const Tables& ctx, const DeviceCiphertext& ct);
DeviceCiphertext mul_by_i(const Tables& ctx, const DeviceCiphertext& ct, bool negative);
}  // namespace resident

}  // namespace ht
