// Polynomials in the Chebyshev basis on an interval [a, b]:
//   p(x) = sum_k c_k T_k(y),  y = (2x - a - b) / (b - a)  in [-1, 1] when x in [a, b].
// Interpolation at the Chebyshev nodes of the first kind (Trefethen, ATAP ch. 3),
// plaintext evaluation by Clenshaw's recurrence, conversion from the power
// basis, and the level cost of evaluating them homomorphically (polyeval.hpp).
// No ciphertexts here: this file is plain numerics.
#pragma once
#include <functional>
#include <vector>

namespace ht {

struct ChebyshevPoly {
  double a = -1.0, b = 1.0;
  std::vector<double> coeffs;  // c_0 .. c_d

  // Index of the last nonzero coefficient (0 for a constant or empty polynomial).
  int degree() const;
  // Levels eval_chebyshev consumes on a ciphertext at its canonical scale:
  // chebyshev_eval_depth(a, b, degree()).
  int depth() const;
  // p(x) in float64 (Clenshaw); x outside [a, b] extrapolates.
  double eval(double x) const;
};

// Interpolant of f at the degree + 1 Chebyshev nodes of [a, b] (a < b, degree >= 0).
ChebyshevPoly chebyshev_interpolate(const std::function<double(double)>& f, double a, double b, int degree);

// The same polynomial sum_k c_k x^k written in the Chebyshev basis of [-1, 1].
ChebyshevPoly chebyshev_from_power(const std::vector<double>& power_coeffs);

// ceil(log2(degree + 1)): the multiplicative depth of a degree-d polynomial
// (0 for a constant).
int chebyshev_depth(int degree);

// True when the change of variable x -> y of [a, b] costs no level: the input
// ciphertext can be reinterpreted as y at scale round(alpha) * scale / alpha
// (alpha = 2 / (b - a)), which stays within a factor 1.5 of the canonical
// scale. That holds for b - a <= 3 ([-1, 1], [0, 1], [-1.5, 1.5], [0, 3] ...).
bool chebyshev_affine_is_free(double a, double b);

// Levels eval_chebyshev consumes for a degree-d polynomial on [a, b]:
// 0 for d = 0, 1 for d = 1, chebyshev_depth(d) for d >= 2 when the change of
// variable is free, chebyshev_depth(d) + 1 otherwise.
int chebyshev_eval_depth(double a, double b, int degree);

}  // namespace ht
