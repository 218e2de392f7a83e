#include "boot/modraise.hpp"

#include <cstring>
#include <vector>

#include "backend/backend.hpp"
#include "backend/kernels/basis.hpp"
#include "core/error.hpp"
#include "core/numth.hpp"
#include "runtime/parallel.hpp"

namespace ht {

Ciphertext mod_raise(const Tables& ctx, const Ciphertext& ct) {
  if (ct.context_id != ctx.id()) fail("bootstrap", "the ciphertext belongs to another context");
  if (ct.size != 2) fail("bootstrap", "relinearize the ciphertext first");
  const u64 n = ctx.n();
  const int L = ctx.max_level();
  const u64 q0 = ctx.prime(0);
  Ciphertext out(n, ct.batch, 2, L, ct.scale, ctx.id(), false, false);
  const size_t polys = static_cast<size_t>(ct.batch) * 2;
  std::vector<std::vector<u64>> coeffs(polys, std::vector<u64>(n));
  parallel_for(polys, [&](size_t p) {
    std::memcpy(coeffs[p].data(), ct.limb(static_cast<int>(p / 2), static_cast<int>(p % 2), 0), n * sizeof(u64));
    backend::ntt_inverse(coeffs[p].data(), ctx.ntt(0));
  });
  parallel_for(polys * (L + 1), [&](size_t idx) {
    const size_t p = idx / (L + 1);
    const int i = static_cast<int>(idx % (L + 1));
    const Modulus& m = ctx.modulus(i);
    u64* o = out.limb(static_cast<int>(p / 2), static_cast<int>(p % 2), i);
    const u64* x = coeffs[p].data();
    for (u64 k = 0; k < n; ++k) o[k] = kernels::centered_mod(x[k], q0, m);
    backend::ntt_forward(o, ctx.ntt(i));
  });
  out.bound = 0;
  return out;
}

Ciphertext mul_by_i(const Tables& ctx, const Ciphertext& ct, bool negative) {
  if (ct.context_id != ctx.id()) fail("multiply by i", "the ciphertext belongs to another context");
  const u64 n = ctx.n();
  Ciphertext out = ct;
  // X^(N/2) at psi^(2 bitrev(k) + 1) is I_q * (-1)^bitrev(k), I_q = psi^(N/2) a
  // square root of -1; bitrev(k) is even exactly for k < N/2.
  parallel_for(static_cast<size_t>(ct.batch) * ct.size * ct.limbs(), [&](size_t idx) {
    const int i = static_cast<int>(idx % ct.limbs());
    const NttTables& t = ctx.ntt(i);
    const u64 q = t.mod.value;
    u64 root = pow_mod(t.psi, n / 2, q);
    if (negative) root = q - root;
    const ShoupConst w = make_shoup(root, q), w_neg = make_shoup(q - root, q);
    u64* x = out.data.data() + idx * n;
    for (u64 k = 0; k < n / 2; ++k) x[k] = mul_shoup(x[k], w, q);
    for (u64 k = n / 2; k < n; ++k) x[k] = mul_shoup(x[k], w_neg, q);
  });
  return out;
}

namespace resident {

DeviceCiphertext mod_raise(const Tables& ctx, const DeviceCiphertext& ct) {
  if (ct.context_id != ctx.id()) fail("bootstrap", "the ciphertext belongs to another context");
  if (ct.size != 2) fail("bootstrap", "relinearize the ciphertext first");
  backend::Backend& be = ct.backend();
  const u64 n = ctx.n();
  const int L = ctx.max_level();
  const size_t polys = static_cast<size_t>(ct.batch) * 2;
  DeviceCiphertext out = make_batch(ctx, be, ct.batch, 2, L, ct.scale, false);
  // q_0's limb of every polynomial in the coefficient domain ...
  backend::DeviceBuffer coef = be.allocate(polys * n);
  std::vector<u64*> c(polys);
  std::vector<const NttTables*> t0(polys, &ctx.ntt(0));
  for (size_t p = 0; p < polys; ++p) {
    c[p] = coef.data() + p * n;
    be.copy(c[p], ct.poly(static_cast<int>(p / 2), static_cast<int>(p % 2)), n);
  }
  be.ntt_inverse(c.data(), t0.data(), polys);
  // ... lifted (centered) to every prime of Q_L, back in the NTT domain.
  std::vector<u64*> o;
  std::vector<const u64*> in;
  std::vector<Modulus> moduli;
  std::vector<const NttTables*> tables;
  for (size_t p = 0; p < polys; ++p)
    for (int i = 0; i <= L; ++i) {
      o.push_back(out.poly(static_cast<int>(p / 2), static_cast<int>(p % 2)) + static_cast<size_t>(i) * n);
      in.push_back(c[p]);
      moduli.push_back(ctx.modulus(i));
      tables.push_back(&ctx.ntt(i));
    }
  be.centered_reduce(o.data(), in.data(), ctx.prime(0), moduli.data(), o.size(), n);
  be.ntt_forward(o.data(), tables.data(), o.size());
  out.bound = 0;
  return out;
}

DeviceCiphertext mul_by_i(const Tables& ctx, const DeviceCiphertext& ct, bool negative) {
  if (ct.context_id != ctx.id()) fail("multiply by i", "the ciphertext belongs to another context");
  const u64 n = ctx.n();
  DeviceCiphertext out = copy(ct);
  // Each limb's two halves times +-I_q and -+I_q (see the host form).
  backend::ConstLimbs<ShoupConst> l;
  for (int b = 0; b < ct.batch; ++b)
    for (int k = 0; k < ct.size; ++k)
      for (int i = 0; i < ct.limbs(); ++i) {
        const NttTables& t = ctx.ntt(i);
        const u64 qi = t.mod.value;
        u64 root = pow_mod(t.psi, n / 2, qi);
        if (negative) root = qi - root;
        u64* x = out.poly(b, k) + static_cast<size_t>(i) * n;
        for (int half = 0; half < 2; ++half)
          l.push(x + half * (n / 2), x + half * (n / 2), make_shoup(half == 0 ? root : qi - root, qi), qi);
      }
  backend::mul_const(ct.backend(), l, n / 2);
  return out;
}

}  // namespace resident
}  // namespace ht
