// CKKS encoding: slot values -> scaled, rounded coefficients (canonical
// embedding via core/fft) -> residues in the NTT domain, and back. Decoding
// interpolates the lowest min(level + 1, 3) primes (at least 140 bits), which
// holds any |value| * scale < 2^139; higher limbs carry no extra information
// about a message of that size.
#pragma once
#include <complex>
#include <memory>
#include <vector>

#include "ckks/ciphertext.hpp"
#include "ckks/tables.hpp"
#include "core/fft.hpp"

namespace ht {

class Encoder {
 public:
  explicit Encoder(std::shared_ptr<const Tables> ctx);

  // values: batch rows of `count` complex slots (count <= slots; zero padded).
  // Throws InvalidArgument when |value| * scale does not fit 62 bits.
  Plaintext encode(const std::complex<double>* values, int batch, u64 count, int level, double scale) const;

  // The scaled, rounded coefficients of each row (what encode reduces modulo
  // every prime); `bound` receives max |value|. Same checks as encode.
  std::vector<std::vector<i64>> coefficients(const std::complex<double>* values, int batch, u64 count, double scale,
                                             double* bound) const {
    return rounded_coefficients(values, batch, count, scale, bound);
  }

  // One plaintext over Q_level and the special primes P: level + 1 + alpha
  // limbs (q_0..q_level, then p_0..p_alpha-1), for products in the extended
  // basis (double-hoisted linear transforms). Its `level` field is
  // level + alpha so that limbs() counts them all; it is not a chain level.
  Plaintext encode_extended(const std::complex<double>* values, u64 count, int level, double scale) const;

  // message: `batch` polynomials of `limbs` limbs in the NTT domain (limbs <= 3),
  // out: batch rows of `slots` values.
  void decode(const u64* message, int batch, int limbs, double scale, std::complex<double>* out) const;

  const Tables& tables() const { return *ctx_; }

 private:
  std::vector<std::vector<i64>> rounded_coefficients(const std::complex<double>* values, int batch, u64 count,
                                                     double scale, double* bound) const;
  void reduce_to_limbs(const std::vector<std::vector<i64>>& coeffs, const std::vector<int>& primes,
                       PolyBatch& out) const;
  std::shared_ptr<const Tables> ctx_;
  SlotFft fft_;
  std::vector<std::vector<u64>> garner_inv_;  // [i][j] = q_j^-1 mod q_i, j < i < 3
};

}  // namespace ht
