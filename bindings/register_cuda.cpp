// CUDA backend entry points (present when built with HETENSOR_CUDA).
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_cuda(py::module_& m) {
#ifdef HETENSOR_WITH_CUDA
  m.attr("cuda_compiled") = true;
#else
  m.attr("cuda_compiled") = false;
#endif
  m.def("cuda_available", []() { return false; });
}
