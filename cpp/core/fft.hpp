// The canonical embedding of Z[X]/(X^N + 1) in C^(N/2), computed with one
// complex FFT of size N: slot j is the evaluation at zeta^(5^j), zeta =
// exp(i*pi/N); the conjugate slots sit at zeta^(-5^j). Decode evaluates
// m(zeta^(2i+1)) = FFT(m_k zeta^k)_i; encode inverts it.
#pragma once
#include <complex>
#include <vector>

#include "core/defs.hpp"

namespace ht {

class SlotFft {
 public:
  explicit SlotFft(u64 n);
  u64 n() const { return n_; }
  // slots (n/2 complex, zero padded by the caller) -> real coefficients (n)
  void slots_to_coeffs(const std::complex<double>* slots, double* coeffs) const;
  // real coefficients (n) -> slots (n/2 complex)
  void coeffs_to_slots(const double* coeffs, std::complex<double>* slots) const;

 private:
  void fft(std::complex<double>* a, bool inverse) const;  // unnormalised, sign -1 for inverse
  u64 n_;
  int log_n_;
  std::vector<std::complex<double>> zeta_;   // zeta^k, k < 2n
  std::vector<std::complex<double>> omega_;  // omega^k = zeta^(2k), k < n/2
  std::vector<u32> slot_pos_;                // position (e - 1) / 2 of slot j, e = 5^j mod 2n
  std::vector<u32> conj_pos_;                // position of its conjugate, e = -5^j mod 2n
  std::vector<u32> bitrev_;
};

}  // namespace ht
