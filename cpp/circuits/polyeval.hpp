// Homomorphic evaluation of polynomials on every slot, in the Chebyshev basis,
// by baby-step giant-step (Paterson-Stockmeyer in the Chebyshev basis as in
// Bossuat et al., Eurocrypt 2021, and Lattigo's polynomial evaluator):
//   p = q * T_G + r (Chebyshev division by a power-of-two T_G), recursively,
//   until the pieces have degree < g (baby steps T_1..T_g, giant steps T_2^j).
// Scale management (what makes it exact and depth-optimal):
//   * each piece is accumulated *unrescaled* at a target (level, scale S), with
//     its constants folded in as integers round(c * S / scale(T_i)) (~2^40), so
//     a constant costs no level of its own; q is evaluated at the scale that
//     lands q * T_G on S, and the sum q * T_G + r is relinearized and rescaled
//     once (lazy relinearization: one key switch per q-piece, not per product);
//   * the powers T_i keep their own scales (tracked exactly, held within a factor
//     1.5 of canonical by small integer factors), so no level_to is ever needed;
//   * the result lands on ctx.scale_at(level) exactly: no drift.
// Depth: chebyshev_eval_depth(a, b, d) = ceil(log2(d + 1)) when the change of
// variable to [-1, 1] is free (b - a <= 3: the input is reinterpreted at another
// scale), one more for wider intervals (one scalar multiplication and rescale).
#pragma once
#include <vector>

#include "ckks/ciphertext.hpp"
#include "ckks/resident.hpp"
#include "ckks/tables.hpp"
#include "ckks/keys.hpp"
#include "circuits/chebyshev.hpp"

namespace ht {

// What one evaluation did (for the benchmarks).
struct PolyEvalStats {
  int ct_products = 0;       // ciphertext x ciphertext tensor products (powers and giant steps)
  int relinearizations = 0;  // key switches (each fused with a rescale)
  int rescales = 0;          // divisions by a prime (fused ones included)
  int scalar_products = 0;   // ciphertext x constant products (no level each)
  int powers = 0;            // T_i computed (i >= 2)
  int baby_step = 0;         // g: pieces below the giant steps have degree < g
  int levels = 0;            // levels consumed: input level - output level
};

// Evaluates p on every slot of every ciphertext of the batch. Consumes
// p.depth() levels (see above); the result is at the canonical scale of its
// level. Inputs must lie in [p.a, p.b]: outside it T_k(y) grows like (2|y|)^k
// and the result is meaningless (or refused when it cannot be held). Throws
// InvalidArgument when the ciphertext has fewer than p.depth() levels, naming
// both counts. A size-3 input is relinearized first.
Ciphertext eval_chebyshev(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct, const ChebyshevPoly& p,
                          PolyEvalStats* stats = nullptr);

// The same, with the result at `out_scale` (within a factor 2^20 of the
// canonical scale of the output level) instead of the canonical scale, e.g. to
// land where a following step expects it. No extra level or operation.
// out_scale <= 0 means canonical.
Ciphertext eval_chebyshev_at_scale(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct,
                                   const ChebyshevPoly& p, double out_scale, PolyEvalStats* stats = nullptr);

// p(x) = sum_k c_k x^k (power basis), evaluated through its Chebyshev form on
// [-1, 1]: ceil(log2(d + 1)) levels, accurate for |x| <= 1.
Ciphertext eval_power(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct,
                      const std::vector<double>& power_coeffs, PolyEvalStats* stats = nullptr);

namespace resident {
// The same on a device-resident ciphertext, on its backend (the same plan and
// levels; the host's result word for word).
DeviceCiphertext eval_chebyshev_at_scale(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct,
                                         const ChebyshevPoly& p, double out_scale = 0.0,
                                         PolyEvalStats* stats = nullptr);
DeviceCiphertext eval_power(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct,
                            const std::vector<double>& power_coeffs, PolyEvalStats* stats = nullptr);
}  // namespace resident

}  // namespace ht
