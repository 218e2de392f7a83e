// Translates core exceptions into hetensor's Python exceptions, defined in
// hetensor/errors.py so that they carry docstrings and attributes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/error.hpp"

namespace py = pybind11;

void register_errors(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ht::MissingKeyError& e) {
      py::object cls = py::module_::import("hetensor.errors").attr("MissingKeyError");
      py::object exc = cls(e.what(), py::cast(e.steps));
      PyErr_SetObject(cls.ptr(), exc.ptr());
    } catch (const ht::FormatError& e) {
      py::object cls = py::module_::import("hetensor.errors").attr("FormatError");
      PyErr_SetString(cls.ptr(), e.what());
    } catch (const ht::SecurityError& e) {
      py::object cls = py::module_::import("hetensor.errors").attr("SecurityError");
      PyErr_SetString(cls.ptr(), e.what());
    }
  });
  (void)m;
}
