// Encryption (public-key and symmetric) and decryption of batches.
//  public:    c = ModDown_P(u*b + e0 + P*m, u*a + e1) computed over Q and P,
//             u ternary, e0, e1 Gaussian: the noise is divided by P
//  symmetric: c = (-a*s + e + m, a), a uniform
//  decrypt:   m = c0 + c1*s (+ c2*s^2) over the lowest min(level + 1, 3) primes
// Fresh randomness per call from a stream forked off the key chain's CSPRNG.
#pragma once
#include "ckks/ciphertext.hpp"
#include "ckks/keys.hpp"

namespace ht {

Ciphertext encrypt_public(KeyChain& keys, const Plaintext& pt);
Ciphertext encrypt_symmetric(KeyChain& keys, const Plaintext& pt);

// The decrypted message polynomials [batch][limbs][N] (NTT domain), limbs <= 3.
Buffer decrypt_message(const KeyChain& keys, const Ciphertext& ct, int& limbs);

}  // namespace ht
