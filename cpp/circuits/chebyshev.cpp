// Chebyshev interpolation, Clenshaw evaluation and level costs (chebyshev.hpp).
#include "circuits/chebyshev.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"

namespace ht {

namespace {

void check_interval(double a, double b, const char* op) {
  if (!std::isfinite(a) || !std::isfinite(b) || !(a < b))
    fail(op, "the interval [" + std::to_string(a) + ", " + std::to_string(b) + "] must be finite with a < b");
}

}  // namespace

int ChebyshevPoly::degree() const {
  for (int k = static_cast<int>(coeffs.size()) - 1; k > 0; --k)
    if (coeffs[k] != 0.0) return k;
  return 0;
}

int ChebyshevPoly::depth() const { return chebyshev_eval_depth(a, b, degree()); }

double ChebyshevPoly::eval(double x) const {
  const double y = (2.0 * x - a - b) / (b - a);
  // Clenshaw: b_k = c_k + 2y b_{k+1} - b_{k+2}; p = c_0 + y b_1 - b_2.
  double b1 = 0.0, b2 = 0.0;
  for (int k = static_cast<int>(coeffs.size()) - 1; k >= 1; --k) {
    const double t = coeffs[k] + 2.0 * y * b1 - b2;
    b2 = b1;
    b1 = t;
  }
  const double c0 = coeffs.empty() ? 0.0 : coeffs[0];
  return c0 + y * b1 - b2;
}

ChebyshevPoly chebyshev_interpolate(const std::function<double(double)>& f, double a, double b, int degree) {
  const char* op = "interpolate a function";
  check_interval(a, b, op);
  // The fit costs O(degree^2); no circuit evaluates beyond a few thousand.
  if (degree < 0 || degree > 4095) fail(op, "the degree must be in [0, 4095]");
  const int n = degree + 1;
  std::vector<double> fx(n);
  const double pi = std::acos(-1.0);
  for (int j = 0; j < n; ++j) {
    const double t = std::cos(pi * (j + 0.5) / n);
    fx[j] = f(0.5 * (b - a) * t + 0.5 * (a + b));
    if (!std::isfinite(fx[j])) fail(op, "the function is not finite at x = " + std::to_string(0.5 * (b - a) * t + 0.5 * (a + b)));
  }
  ChebyshevPoly p;
  p.a = a;
  p.b = b;
  p.coeffs.assign(n, 0.0);
  for (int k = 0; k < n; ++k) {
    double s = 0.0;
    for (int j = 0; j < n; ++j) s += fx[j] * std::cos(pi * k * (j + 0.5) / n);
    p.coeffs[k] = (k == 0 ? 1.0 : 2.0) * s / n;
  }
  return p;
}

ChebyshevPoly chebyshev_from_power(const std::vector<double>& pc) {
  // Horner in the Chebyshev basis: r <- r * x + c_k, with
  // x T_0 = T_1 and x T_j = (T_{j+1} + T_{j-1}) / 2 for j >= 1.
  ChebyshevPoly p;
  std::vector<double> r;
  for (int k = static_cast<int>(pc.size()) - 1; k >= 0; --k) {
    std::vector<double> t(r.size() + 1, 0.0);
    for (size_t j = 0; j < r.size(); ++j) {
      if (j == 0) {
        t[1] += r[0];
      } else {
        t[j + 1] += 0.5 * r[j];
        t[j - 1] += 0.5 * r[j];
      }
    }
    if (t.empty()) t.push_back(0.0);
    t[0] += pc[k];
    r.swap(t);
  }
  p.coeffs = r.empty() ? std::vector<double>{0.0} : r;
  return p;
}

int chebyshev_depth(int degree) {
  int m = 0;
  while ((1LL << m) < static_cast<long long>(degree) + 1) ++m;
  return m;
}

bool chebyshev_affine_is_free(double a, double b) {
  check_interval(a, b, "evaluate a polynomial");
  const double alpha = 2.0 / (b - a);
  const double m = std::max(1.0, std::nearbyint(alpha));
  return m / alpha <= 1.5;
}

int chebyshev_eval_depth(double a, double b, int degree) {
  if (degree <= 1) return degree < 0 ? 0 : degree;
  return chebyshev_depth(degree) + (chebyshev_affine_is_free(a, b) ? 0 : 1);
}

}  // namespace ht
