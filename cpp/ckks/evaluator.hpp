// Homomorphic operations on ciphertext batches. Levels are aligned
// automatically (the higher operand is brought down, see level_to); scales are
// the Tables' canonical per-level scales, so additions never need a fix-up.
// Every operation checks contexts, levels and shapes first and names itself
// in the error.
#pragma once
#include <complex>
#include <vector>

#include "ckks/ciphertext.hpp"
#include "ckks/encoder.hpp"
#include "ckks/keys.hpp"

namespace ht {

// Level and scale effects are stated per function.
// Refuses a result whose |value| <= bound at `scale` the lowest primes could not decrypt.
void check_value_bound(const Tables& ctx, int level, double scale, double bound, const char* op);
// The constants of level changes and scalar products, shared with the device-resident twins (ckks/resident).
// Residue of the integer nearest to x modulo q (|x| < 2^63).
u64 residue_of(long double x, u64 q);
// The residues mod q_0 .. q_from of round(s_level * q_from / scale), the constant level_to multiplies a
// ciphertext at (from, scale) by before its rescale; empty when level == from (nothing to do). Refuses a
// level above `from` or below 0, and a scale the constant cannot align.
std::vector<u64> level_to_residues(const Tables& ctx, int from, double scale, int level);
// The residues mod q_0 .. q_level that multiply a ciphertext at (level, scale) by the finite scalar c: c
// itself when it is an integer (no level: rescale = false), else round(c * s_{level-1} * q_level / scale),
// rescaled once onto the canonical scale of level - 1 (rescale = true). Refuses a non-integer c at level 0.
std::vector<u64> scalar_residues(const Tables& ctx, int level, double scale, double c, bool& rescale);
Ciphertext add(const Tables& ctx, const Ciphertext& a, const Ciphertext& b);   // level min(a, b)
Ciphertext sub(const Tables& ctx, const Ciphertext& a, const Ciphertext& b);   // level min(a, b)
Ciphertext negate(const Tables& ctx, const Ciphertext& a);                      // no level
Ciphertext add_plain(const Tables& ctx, const Ciphertext& a, const Plaintext& p);  // p at a's level/scale
// a - p (negate_plain), p - a (negate_ct), or a + p: no level.
Ciphertext sub_plain(const Tables& ctx, const Ciphertext& a, const Plaintext& p, bool negate_plain, bool negate_ct);
// p encoded at plain_mul_scale(a.level); consumes one level.
Ciphertext mul_plain(const Tables& ctx, const Ciphertext& a, const Plaintext& p);
double plain_mul_scale(const Tables& ctx, int level);
Ciphertext add_scalar(const Tables& ctx, const Ciphertext& a, double c);        // no level
// Real scalar: an integer |c| < 2^31 costs no level, any other value one level.
Ciphertext mul_scalar(const Tables& ctx, const Ciphertext& a, double c);
// Ciphertext product, relinearized and rescaled: consumes one level.
Ciphertext multiply(const Tables& ctx, const KeyChain& keys, const Ciphertext& a, const Ciphertext& b);
Ciphertext square(const Tables& ctx, const KeyChain& keys, const Ciphertext& a);
// Tensor product only (size 3, scale s^2, no level consumed yet).
Ciphertext multiply_no_relin(const Tables& ctx, const Ciphertext& a, const Ciphertext& b);
Ciphertext relinearize(const Tables& ctx, const KeyChain& keys, const Ciphertext& a);
// Size 3 -> size 2 and one level down in one ModDown by P * q_level (cheaper
// than relinearize + rescale). Scale: a.scale / q_level; bound kept.
Ciphertext relinearize_rescale(const Tables& ctx, const KeyChain& keys, const Ciphertext& a);
// Divides by the last prime: level - 1, scale / q_level.
Ciphertext rescale(const Tables& ctx, const Ciphertext& a);
// Brings a down to `level` with the canonical scale of that level (one
// constant multiplication and rescale when the level changes).
Ciphertext level_to(const Tables& ctx, const Ciphertext& a, int level);
// The same polynomials read at another scale with a new value bound (the
// values multiply by a.scale / scale): the free rescalings of bootstrapping.
// The bound is the caller's claim (nothing decrypts to check it); scale must
// be finite and > 0, bound finite and >= 0. No level.
Ciphertext with_scale(const Ciphertext& a, double scale, double bound);
// Slot rotation: out[i] = in[(i + step) mod slots]. No level.
Ciphertext rotate(const Tables& ctx, const KeyChain& keys, const Ciphertext& a, long step);
// Many rotations of one ciphertext sharing one decomposition (hoisting).
std::vector<Ciphertext> rotate_hoisted(const Tables& ctx, const KeyChain& keys, const Ciphertext& a,
                                       const std::vector<long>& steps);
Ciphertext conjugate(const Tables& ctx, const KeyChain& keys, const Ciphertext& a);  // no level

// Throws MissingKeyError listing the steps whose Galois keys are missing.
void require_rotation_keys(const KeyChain& keys, const std::vector<long>& steps);

}  // namespace ht
