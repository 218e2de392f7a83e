#include "core/fft.hpp"

#include <cmath>

#include "core/numth.hpp"

namespace ht {

SlotFft::SlotFft(u64 n) : n_(n), log_n_(0) {
  while ((u64(1) << log_n_) < n) ++log_n_;
  const long double pi = 3.141592653589793238462643383279502884L;
  zeta_.resize(2 * n);
  for (u64 k = 0; k < 2 * n; ++k) {
    const long double a = pi * static_cast<long double>(k) / static_cast<long double>(n);
    zeta_[k] = {static_cast<double>(std::cos(a)), static_cast<double>(std::sin(a))};
  }
  omega_.resize(n / 2);
  for (u64 k = 0; k < n / 2; ++k) omega_[k] = zeta_[2 * k];
  slot_pos_.resize(n / 2);
  conj_pos_.resize(n / 2);
  u64 e = 1;
  const u64 m = 2 * n;
  for (u64 j = 0; j < n / 2; ++j) {
    slot_pos_[j] = static_cast<u32>((e - 1) / 2);
    conj_pos_[j] = static_cast<u32>((m - e - 1) / 2);
    e = (e * 5) % m;
  }
  bitrev_.resize(n);
  for (u64 k = 0; k < n; ++k) bitrev_[k] = static_cast<u32>(bit_reverse(k, log_n_));
}

void SlotFft::fft(std::complex<double>* a, bool inverse) const {
  for (u64 k = 0; k < n_; ++k)
    if (k < bitrev_[k]) std::swap(a[k], a[bitrev_[k]]);
  for (u64 len = 2; len <= n_; len <<= 1) {
    const u64 half = len / 2, stride = n_ / len;
    for (u64 s = 0; s < n_; s += len) {
      for (u64 j = 0; j < half; ++j) {
        std::complex<double> w = omega_[j * stride];
        if (inverse) w = std::conj(w);
        const std::complex<double> u = a[s + j], v = a[s + j + half] * w;
        a[s + j] = u + v;
        a[s + j + half] = u - v;
      }
    }
  }
}

void SlotFft::slots_to_coeffs(const std::complex<double>* slots, double* coeffs) const {
  std::vector<std::complex<double>> v(n_);
  for (u64 j = 0; j < n_ / 2; ++j) {
    v[slot_pos_[j]] = slots[j];
    v[conj_pos_[j]] = std::conj(slots[j]);
  }
  fft(v.data(), true);
  const double inv_n = 1.0 / static_cast<double>(n_);
  // m_k = Re(zeta^-k * w_k) / n, and zeta^-k = conj(zeta^k)
  for (u64 k = 0; k < n_; ++k) coeffs[k] = (v[k] * std::conj(zeta_[k])).real() * inv_n;
}

void SlotFft::coeffs_to_slots(const double* coeffs, std::complex<double>* slots) const {
  std::vector<std::complex<double>> u(n_);
  for (u64 k = 0; k < n_; ++k) u[k] = coeffs[k] * zeta_[k];
  fft(u.data(), false);
  for (u64 j = 0; j < n_ / 2; ++j) slots[j] = u[slot_pos_[j]];
}

}  // namespace ht
