// Key material, all in the NTT domain.
//  SecretKey: s over every prime of Q and P (zeroed on free).
//  PublicKey: (b, a) = (-a*s + e, a) over Q and P.
//  SwitchKey: hybrid key-switching key from s' to s with dnum digits:
//    digit j: (b_j, a_j) over Q and P, b_j = -a_j*s + e_j + P*g_j*s', where the
//    gadget g_j is 1 modulo the primes of digit j and 0 modulo the others.
//  KeyChain: everything a context holds; Galois keys are keyed by element.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "ckks/context.hpp"
#include "core/prng.hpp"
#include "runtime/buffer.hpp"

namespace ht {

struct SecretKey {
  Buffer s;   // [L + 1 + alpha][N]
};

struct PublicKey {
  Buffer b, a;  // [L + 1 + alpha][N]
};

struct SwitchKey {
  int digits = 0;
  Buffer data;  // [digits][2][L + 1 + alpha][N], b before a
  const u64* b(int j, u64 limbs, u64 n) const { return data.data() + (2 * j) * limbs * n; }
  const u64* a(int j, u64 limbs, u64 n) const { return data.data() + (2 * j + 1) * limbs * n; }
  size_t bytes() const { return data.bytes(); }
};

class KeyChain {
 public:
  KeyChain(std::shared_ptr<const Context> ctx, std::optional<u64> seed);

  const Context& context() const { return *ctx_; }
  const SecretKey& secret() const { return sk_; }
  const PublicKey& public_key() const { return pk_; }
  const SwitchKey& relin_key() const { return relin_; }

  // Galois keys for slot rotations; existing ones are kept.
  void generate_rotation_keys(const std::vector<long>& steps);
  void generate_conjugation_key();
  bool has_galois_key(u64 galois_elt) const;
  const SwitchKey& galois_key(u64 galois_elt) const;  // throws if missing
  std::vector<long> rotation_steps() const;            // steps with keys, in [0, slots)
  size_t key_bytes() const;

  // A fresh independent random stream (seeded from the chain's stream).
  Prng fork_prng();

  // Sparse-secret encapsulation for bootstrapping (Bossuat et al. 2022): a
  // sparse ternary s' of Hamming weight h, a key from s to s' that lives only
  // modulo q_0 * p_0 (small enough for a sparse secret to be safe) and a key
  // from s' back to s over the whole chain (encrypted under the dense s).
  void generate_encapsulation_keys(int hamming_weight);
  bool has_encapsulation() const { return encaps_weight_ > 0; }
  int encapsulation_weight() const { return encaps_weight_; }
  // [2][2][N]: (b, a) over limbs (q_0, p_0), one digit.
  const Buffer& to_sparse_key() const { return to_sparse_; }
  const SwitchKey& to_dense_key() const { return to_dense_; }

 private:
  SwitchKey make_switch_key(const u64* s_prime);
  std::shared_ptr<const Context> ctx_;
  std::mutex prng_mutex_;
  Prng prng_;
  SecretKey sk_;
  PublicKey pk_;
  SwitchKey relin_;
  mutable std::mutex galois_mutex_;
  std::map<u64, std::unique_ptr<SwitchKey>> galois_;
  int encaps_weight_ = 0;
  Buffer to_sparse_;
  SwitchKey to_dense_;
};

// Adds a small polynomial (coefficients in Z, |c| < 2^62) to every limb of
// `out` in the NTT domain: out_i += NTT([c]_{q_i}). `primes` lists prime indices.
void add_small_poly_ntt(const Context& ctx, const std::vector<i64>& c, u64* out, const std::vector<int>& primes);

}  // namespace ht
