// Engine: the native half of a Python hetensor.Context: the parameter
// Tables with their keys and encoder, and the value-level operations that
// Python calls (encode at the right scale, range checks).
// Thread-safe for concurrent operations; key generation takes a lock.
#pragma once
#include <complex>
#include <memory>
#include <optional>
#include <vector>

#include "ckks/encoder.hpp"
#include "ckks/encryptor.hpp"
#include "ckks/evaluator.hpp"
#include "ckks/keys.hpp"

namespace ht {

using cplx = std::complex<double>;

class Engine {
 public:
  Engine(const ParamsLiteral& literal, std::optional<u64> seed);
  // An evaluation-only engine over loaded keys (no secret key).
  Engine(std::shared_ptr<Tables> ctx, std::unique_ptr<KeyChain> keys);
  // The same tables and keys without the secret (keys shared, not copied).
  std::unique_ptr<Engine> public_view() const;
  std::shared_ptr<Tables> tables_ptr() const { return ctx_; }
  const KeyChain& keys() const { return *keys_; }
  // A seed makes every key and encryption reproducible: such an engine is
  // never reported secure.
  bool seeded() const { return seeded_; }
  bool is_secure() const { return !seeded_ && ctx_->params().is_secure(); }
  std::string describe() const;

  const Tables& tables() const { return *ctx_; }
  KeyChain& keys() { return *keys_; }
  const Encoder& encoder() const { return *encoder_; }

  // values: batch rows of `count` slots. Checks |value| * scale < q_0 / 4 so
  // the value survives to the last level.
  // level < 0: the top of the chain.
  Ciphertext encrypt(const cplx* values, int batch, u64 count, bool symmetric, int level = -1);
  // batch rows of `slots` values.
  std::vector<cplx> decrypt(const Ciphertext& ct) const;
  // Decryption for results that leave the key holder (IND-CPA-D, Li and
  // Micciancio 2021): adds a fresh rounded Gaussian of standard deviation
  // flood_sigma (coefficient units, 2^4 .. 2^50) to the message before decoding.
  std::vector<cplx> decrypt_flooded(const Ciphertext& ct, double flood_sigma);

  Ciphertext add_values(const Ciphertext& a, const cplx* values, int rows, u64 count, bool subtract, bool reverse);
  Ciphertext mul_values(const Ciphertext& a, const cplx* values, int rows, u64 count);
  // The encoded operands of add_values (at the ciphertext's level and scale)
  // and mul_values (for multiply at `level`), NaN/Inf refused: what both the
  // host and the device-resident ciphertexts add or multiply.
  Plaintext plain_for_add(u64 context_id, int level, double scale, const cplx* values, int rows, u64 count) const;
  Plaintext plain_for_mul(u64 context_id, int level, const cplx* values, int rows, u64 count) const;
  double max_encrypt_magnitude() const;

 private:
  std::shared_ptr<Tables> ctx_;
  std::unique_ptr<KeyChain> keys_;
  std::unique_ptr<Encoder> encoder_;
  bool seeded_ = false;
};

}  // namespace ht
