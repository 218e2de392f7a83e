// The 128-bit classical security bound on log2(Q*P) for a uniform ternary
// secret and sigma = 3.2: HomomorphicEncryption.org standard (2018) for
// N <= 2^15; OpenFHE's ternary table for 2^16 and 2^17 (the standard stops at
// 2^15). The bound counts the special primes P as well.
#pragma once

namespace ht {

// Smallest error standard deviation the table covers (OpenFHE's 3.19).
constexpr double kMinSigma = 3.19;

// Max log2(QP) at 128-bit security, or -1 when N is outside the table.
inline int he_standard_max_log_qp(int log_n) {
  switch (log_n) {
    case 10: return 27;
    case 11: return 54;
    case 12: return 109;
    case 13: return 218;
    case 14: return 438;
    case 15: return 881;
    case 16: return 1747;
    case 17: return 3523;
    default: return -1;
  }
}

}  // namespace ht
