// Encryption (public-key and symmetric) and decryption of batches.
//  public:    c = round((u*b + e0 + p*m, u*a + e1) / p) computed over Q and
//             one special prime p, u ternary, e0, e1 Gaussian: the noise is
//             divided by p; only u takes NTTs (e0, e1, m join in the
//             coefficient domain inside the division)
//  symmetric: c = (-a*s + e + m, a), a uniform
//  decrypt:   m = c0 + c1*s (+ c2*s^2) over the lowest min(level + 1, 3) primes
// Fresh randomness per call from a stream forked off the key chain's CSPRNG.
#pragma once
#include "ckks/ciphertext.hpp"
#include "ckks/keys.hpp"
#include <vector>

namespace ht {

Ciphertext encrypt_public(KeyChain& keys, const Plaintext& pt);
// The same from the message's rounded coefficients (Encoder::coefficients):
// bit for bit what encrypt_public(encode(...)) gives, without the message's NTTs.
Ciphertext encrypt_public_coefficients(KeyChain& keys, const std::vector<std::vector<i64>>& coeffs, int level,
                                       double scale);
Ciphertext encrypt_symmetric(KeyChain& keys, const Plaintext& pt);

// The decrypted message polynomials [batch][limbs][N] (NTT domain), limbs <= 3.
Buffer decrypt_message(const KeyChain& keys, const Ciphertext& ct, int& limbs);

}  // namespace ht
