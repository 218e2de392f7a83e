#include "core/ntt_tables.hpp"

#include "core/error.hpp"
#include "core/numth.hpp"

namespace ht {

NttTables::NttTables(u64 q, u64 n_) : mod(make_modulus(q)), n(n_) {
  if (n < 2 || (n & (n - 1))) throw InvalidArgument("ring degree must be a power of two");
  while ((u64(1) << log_n) < n) ++log_n;
  psi = primitive_2n_root(q, n);
  const u64 ipsi = inv_mod(psi, q);
  psi_rev.resize(n);
  ipsi_rev.resize(n);
  u64 p = 1, ip = 1;
  std::vector<u64> pw(n), ipw(n);
  for (u64 i = 0; i < n; ++i) {
    pw[i] = p;
    ipw[i] = ip;
    p = static_cast<u64>((u128(p) * psi) % q);
    ip = static_cast<u64>((u128(ip) * ipsi) % q);
  }
  for (u64 i = 0; i < n; ++i) {
    const u64 r = bit_reverse(i, log_n);
    psi_rev[i] = make_shoup(pw[r], q);
    ipsi_rev[i] = make_shoup(ipw[r], q);
  }
  n_inv = make_shoup(inv_mod(n % q, q), q);
}

}  // namespace ht
