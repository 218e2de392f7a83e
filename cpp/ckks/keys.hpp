// Key material, all in the NTT domain.
//  SecretKey: s over every prime of Q and P (zeroed on free).
//  PublicKey: (b, a) = (-a*s + e, a) over Q and P.
//  SwitchKey: hybrid key-switching key from s' to s with dnum digits:
//    digit j: (b_j, a_j) over Q and P, b_j = -a_j*s + e_j + P*g_j*s', where the
//    gadget g_j is 1 modulo the primes of digit j and 0 modulo the others.
//  KeyChain: everything a context holds; Galois keys are keyed by element.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "backend/backend.hpp"
#include "ckks/tables.hpp"
#include "core/prng.hpp"
#include "runtime/buffer.hpp"

namespace ht {

struct SecretKey {
  Buffer s;   // [L + 1 + alpha][N]
};

// The uniform `a` parts of keys and symmetric ciphertexts are expanded from a
// 32-byte seed: limb i is the AES-256-CTR stream i of the seed, mapped to
// [0, q) (core/aes.hpp), so they can be stored as the seed alone
// (serialize.hpp) and any limb can be regenerated on its own.
void expand_uniform(const Tables& ctx, const Seed& seed, u64* out, const std::vector<int>& primes);
void expand_uniform_limb(const Tables& ctx, const Seed& seed, int prime, u64* out);

struct PublicKey {
  Buffer b, a;  // [L + 1 + alpha][N]
  Seed a_seed{};
};

struct SwitchKey {
  int digits = 0;
  int level = 0;         // the highest level it serves: max_level, or less when trimmed
  int alpha = 0;
  u64 n = 0;
  // Compact: only the b halves are stored; a_j is regenerated from a_seeds[j]
  // limb by limb at every use (half the memory, a little more time).
  bool compact = false;
  Buffer data;  // [digits][compact ? 1 : 2][level + 1 + alpha][N]: b_j then a_j
  std::vector<Seed> a_seeds;  // one per digit: a_j = expand_uniform(a_seeds[j]) over every prime
  int limbs() const { return level + 1 + alpha; }
  int halves() const { return compact ? 1 : 2; }
  // The key limb of prime index `prime` (Q primes up to `level`, then P; max_level: the chain's).
  size_t limb_of(int prime, int max_level) const {
    return static_cast<size_t>(prime <= max_level ? prime : level + 1 + (prime - max_level - 1));
  }
  u64* b(int j, size_t limb) { return data.data() + (static_cast<size_t>(halves() * j) * limbs() + limb) * n; }
  const u64* b(int j, size_t limb) const { return const_cast<SwitchKey*>(this)->b(j, limb); }
  // Null for a compact key (use expand_a).
  const u64* a(int j, size_t limb) const {
    return compact ? nullptr : data.data() + (static_cast<size_t>(2 * j + 1) * limbs() + limb) * n;
  }
  u64* a(int j, size_t limb) { return const_cast<u64*>(static_cast<const SwitchKey*>(this)->a(j, limb)); }
  // Limb `prime` of a_j into out[N] (from the seed, stored or not).
  void expand_a(const Tables& ctx, int j, int prime, u64* out) const;
  size_t bytes() const { return data.bytes(); }
};

// A switching key where one backend reads it: SwitchKey::data's layout in
// that backend's memory. Compact keys (a_j regenerated from the seeds at each
// use, on the host) are read from host memory only.
struct KeyView {
  const SwitchKey* key = nullptr;  // shape, seeds
  const u64* data = nullptr;       // [digits][halves][limbs][N] in the backend's memory
  bool compact = false;
  int halves() const { return compact ? 1 : 2; }
  const u64* b(int j, size_t limb) const {
    return data + (static_cast<size_t>(halves() * j) * key->limbs() + limb) * key->n;
  }
  const u64* a(int j, size_t limb) const {  // not for a compact key
    return data + (static_cast<size_t>(2 * j + 1) * key->limbs() + limb) * key->n;
  }
};
// The key in host memory, where the CPU backend reads it (no copy).
inline KeyView host_view(const SwitchKey& key) { return KeyView{&key, key.data.data(), key.compact}; }

// Sparse-secret encapsulation keys of bootstrapping (see KeyChain).
struct EncapsulationKeys {
  int weight = 0;
  Buffer to_sparse;   // [2][2][N]: (b, a) over limbs (q_0, p_0), one digit
  Seed to_sparse_seed{};
  SwitchKey to_dense;
};

// Keys are immutable once made and shared by pointer, so a public (secret-
// free) chain can share them with the chain that made them.
class KeyChain {
 public:
  KeyChain(std::shared_ptr<const Tables> ctx, std::optional<u64> seed);
  // A chain from loaded keys; without `secret` (empty) it is evaluation only.
  KeyChain(std::shared_ptr<const Tables> ctx, std::shared_ptr<const PublicKey> pk,
           std::shared_ptr<const SwitchKey> relin, Buffer secret = Buffer());

  const Tables& tables() const { return *ctx_; }
  std::shared_ptr<const Tables> tables_ptr() const { return ctx_; }
  bool has_secret() const { return sk_.s.size() != 0; }
  const SecretKey& secret() const;   // throws on a public chain
  const PublicKey& public_key() const { return *pk_; }
  const SwitchKey& relin_key() const { return *relin_; }
  std::shared_ptr<const PublicKey> public_key_ptr() const { return pk_; }
  std::shared_ptr<const SwitchKey> relin_key_ptr() const { return relin_; }
  // A fingerprint of the public key: objects made under other keys are refused on load.
  u64 key_id() const;

  // Keys made from now on are compact (SwitchKey::compact).
  void set_compact_keys(bool compact) { compact_ = compact; }
  // The relinearization key, made expanded with the chain, made compact (its
  // b halves and seeds kept). Only while nothing else uses the chain: an
  // operation running meanwhile may hold the expanded key.
  void compact_relin_key();
  bool compact_keys() const { return compact_; }

  // Galois keys for slot rotations. A key serves ciphertexts up to `level`
  // (-1: the top); an existing key is kept when it serves that level and
  // replaced by a wider one otherwise.
  void generate_rotation_keys(const std::vector<long>& steps, int level = -1);
  void generate_conjugation_key(int level = -1);
  void add_galois_key(u64 galois_elt, std::shared_ptr<const SwitchKey> key);
  bool has_galois_key(u64 galois_elt) const;
  // The key, kept alive by the pointer even if a wider key replaces it; throws if missing.
  std::shared_ptr<const SwitchKey> galois_key(u64 galois_elt) const;
  std::vector<u64> galois_elements() const;
  std::vector<long> rotation_steps() const;            // steps with keys, in [0, slots)
  size_t key_bytes() const;

  // `key` where backend `be` reads it. The CPU backend reads host memory:
  // the key itself, no copy (a compact key stays compact). Any other backend
  // gets a copy uploaded on first use and kept with this chain (one per key
  // and device), compact keys expanded on upload: a device has no AES to
  // regenerate a_j, and a per-use host expansion would cross the bus at every
  // key switch. The caller holds `key` while it uses the view.
  KeyView device_key(const std::shared_ptr<const SwitchKey>& key, backend::Backend& be) const;
  // The sparse-secret key (to_sparse_key, [2][2][N]) where `be` reads it:
  // host memory on the CPU, else uploaded once per device and kept.
  const u64* device_sparse_key(backend::Backend& be) const;
  // Bytes of key copies held in backend memory (all devices).
  size_t device_key_bytes() const;

  // A fresh independent random stream (seeded from the chain's stream).
  Prng fork_prng();

  // Sparse-secret encapsulation for bootstrapping (Bossuat et al. 2022): a
  // sparse ternary s' of Hamming weight h, a key from s to s' that lives only
  // modulo q_0 * p_0 (small enough for a sparse secret to be safe) and a key
  // from s' back to s over the whole chain (encrypted under the dense s).
  // Made once: a second call with the same weight does nothing, another
  // weight is refused (bootstraps running in other threads read the keys).
  void generate_encapsulation_keys(int hamming_weight);
  void set_encapsulation(std::shared_ptr<const EncapsulationKeys> keys);
  bool has_encapsulation() const;
  int encapsulation_weight() const;
  std::shared_ptr<const EncapsulationKeys> encapsulation() const;
  const Buffer& to_sparse_key() const { return encapsulation_checked().to_sparse; }
  const SwitchKey& to_dense_key() const { return encapsulation_checked().to_dense; }

  // The same keys without the secret (they are shared, not copied).
  std::unique_ptr<KeyChain> public_copy() const;

 private:
  SwitchKey make_switch_key(const u64* s_prime, int level = -1);
  void make_galois_key(u64 galois_elt, int level);
  bool compact_ = false;
  const EncapsulationKeys& encapsulation_checked() const;
  void require_secret(const char* op) const;
  std::shared_ptr<const Tables> ctx_;
  std::mutex prng_mutex_;
  Prng prng_;
  SecretKey sk_;
  std::shared_ptr<const PublicKey> pk_;
  std::shared_ptr<const SwitchKey> relin_;
  mutable std::mutex galois_mutex_;
  std::map<u64, std::shared_ptr<const SwitchKey>> galois_;
  mutable std::mutex encaps_mutex_;
  std::mutex encaps_gen_mutex_;
  std::shared_ptr<const EncapsulationKeys> encaps_;
  struct DeviceCopy {
    std::shared_ptr<const SwitchKey> host;  // pins the address the map is keyed by
    backend::DeviceBuffer data;
  };
  mutable std::mutex device_mutex_;
  mutable std::map<std::pair<const backend::Backend*, const SwitchKey*>, DeviceCopy> device_keys_;
  struct SparseCopy {
    std::shared_ptr<const EncapsulationKeys> host;
    backend::DeviceBuffer data;
  };
  mutable std::map<std::pair<const backend::Backend*, const EncapsulationKeys*>, SparseCopy> device_sparse_;
};

// Adds a small polynomial (coefficients in Z, |c| < 2^62) to every limb of
// `out` in the NTT domain: out_i += NTT([c]_{q_i}). `primes` lists prime indices.
void add_small_poly_ntt(const Tables& ctx, const std::vector<i64>& c, u64* out, const std::vector<int>& primes);

}  // namespace ht
