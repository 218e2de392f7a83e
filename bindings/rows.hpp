// Rows of slot values from a 2-D complex numpy array (the operand of
// encrypt, encode, add_values and mul_values), copied so the GIL can go.
#pragma once
#include <pybind11/complex.h>
#include <pybind11/numpy.h>

#include <complex>
#include <vector>

#include "core/error.hpp"

using CArray = pybind11::array_t<std::complex<double>, pybind11::array::c_style | pybind11::array::forcecast>;

struct Rows {
  std::vector<std::complex<double>> values;
  int rows = 0;
  ht::u64 count = 0;
};

inline Rows rows_of(const CArray& a) {
  if (a.ndim() != 2) throw ht::InvalidArgument("expected a 2-D array of rows of slot values");
  Rows r;
  r.rows = static_cast<int>(a.shape(0));
  r.count = static_cast<ht::u64>(a.shape(1));
  r.values.assign(a.data(), a.data() + a.size());
  return r;
}
