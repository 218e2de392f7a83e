// Engine: one context with its keys and encoder, and the value-level
// operations that Python calls (encode at the right scale, range checks).
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

  const Context& context() const { return *ctx_; }
  KeyChain& keys() { return *keys_; }
  const Encoder& encoder() const { return *encoder_; }

  // values: batch rows of `count` slots. Checks |value| * scale < q_0 / 4 so
  // the value survives to the last level.
  // level < 0: the top of the chain.
  Ciphertext encrypt(const cplx* values, int batch, u64 count, bool symmetric, int level = -1);
  // batch rows of `slots` values.
  std::vector<cplx> decrypt(const Ciphertext& ct) const;

  Ciphertext add_values(const Ciphertext& a, const cplx* values, int rows, u64 count, bool subtract, bool reverse);
  Ciphertext mul_values(const Ciphertext& a, const cplx* values, int rows, u64 count);
  double max_encrypt_magnitude() const;

 private:
  std::shared_ptr<Context> ctx_;
  std::unique_ptr<KeyChain> keys_;
  std::unique_ptr<Encoder> encoder_;
};

}  // namespace ht
