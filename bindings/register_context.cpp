// The Engine (context + keys + encoder) and its operations. Every heavy call
// releases the GIL; numpy inputs are copied before the release.
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <optional>

#include "ckks/engine.hpp"
#include "core/error.hpp"

#include "rows.hpp"

namespace py = pybind11;
using ht::Ciphertext;
using ht::Engine;

namespace {
using release = py::call_guard<py::gil_scoped_release>;
}  // namespace

void register_context(py::module_& m) {
  py::class_<Engine>(m, "Engine")
      .def(py::init([](const ht::ParamsLiteral& lit, std::optional<ht::u64> seed) {
             py::gil_scoped_release r;
             return std::make_unique<Engine>(lit, seed);
           }),
           py::arg("literal"), py::arg("seed") = py::none())
      .def_property_readonly("id", [](const Engine& e) { return e.tables().id(); })
      .def_property_readonly("ring_degree", [](const Engine& e) { return e.tables().n(); })
      .def_property_readonly("slots", [](const Engine& e) { return e.tables().slots(); })
      .def_property_readonly("max_level", [](const Engine& e) { return e.tables().max_level(); })
      .def_property_readonly("dnum", [](const Engine& e) { return e.tables().params().dnum(); })
      .def_property_readonly("log_q", [](const Engine& e) { return e.tables().params().log_q(); })
      .def_property_readonly("log_qp", [](const Engine& e) { return e.tables().params().log_qp(); })
      .def_property_readonly("is_secure", &Engine::is_secure)
      .def_property_readonly("seeded", &Engine::seeded)
      .def_property_readonly("is_public", [](const Engine& e) { return !e.keys().has_secret(); })
      .def_property_readonly("security_problem", [](const Engine& e) {
        return e.seeded() ? std::string("the keys come from a fixed seed (tests only)")
                          : e.tables().params().security_problem();
      })
      .def_property_readonly("params_problem", [](const Engine& e) { return e.tables().params().security_problem(); })
      .def("public_view", [](const Engine& e) { return e.public_view(); })
      .def_property_readonly("security_bound", [](const Engine& e) { return e.tables().params().security_bound(); })
      .def_property_readonly("q", [](const Engine& e) { return e.tables().params().q(); })
      .def_property_readonly("p", [](const Engine& e) { return e.tables().params().p(); })
      .def_property_readonly("params_hash", [](const Engine& e) { return e.tables().params().hash(); })
      .def_property_readonly("max_encrypt_magnitude", &Engine::max_encrypt_magnitude)
      .def("describe", &Engine::describe)
      .def("scale_at", [](const Engine& e, int level) {
        if (level < 0 || level > e.tables().max_level()) throw ht::InvalidArgument("level out of range");
        return e.tables().scale_at(level);
      })
      .def("generate_rotation_keys", [](Engine& e, const std::vector<long>& steps, int level) {
        if (level < -1 || level > e.tables().max_level())
          throw ht::InvalidArgument("generate_rotation_keys: level " + std::to_string(level) + " is outside [0, " +
                                    std::to_string(e.tables().max_level()) + "] (or -1: every level)");
        e.keys().generate_rotation_keys(steps, level);
      }, py::arg("steps"), py::arg("level") = -1, release())
      .def("generate_conjugation_key", [](Engine& e, int level) {
        if (level < -1 || level > e.tables().max_level())
          throw ht::InvalidArgument("generate_conjugation_key: level " + std::to_string(level) + " is outside [0, " +
                                    std::to_string(e.tables().max_level()) + "] (or -1: every level)");
        e.keys().generate_conjugation_key(level);
      }, py::arg("level") = -1, release())
      .def_property("compact_keys", [](Engine& e) { return e.keys().compact_keys(); },
                    [](Engine& e, bool on) { e.keys().set_compact_keys(on); })
      .def("compact_relin_key", [](Engine& e) { e.keys().compact_relin_key(); })
      .def_property_readonly("relin_key_compact", [](Engine& e) { return e.keys().relin_key().compact; })
      .def("galois_key_levels", [](Engine& e) {
        std::map<ht::u64, int> out;
        for (ht::u64 g : e.keys().galois_elements()) out[g] = e.keys().galois_key(g)->level;
        return out;
      })
      .def("rotation_steps", [](Engine& e) { return e.keys().rotation_steps(); })
      .def("require_rotation_keys", [](Engine& e, const std::vector<long>& steps) {
        ht::require_rotation_keys(e.keys(), steps);
      })
      .def("key_bytes", [](Engine& e) { return e.keys().key_bytes(); })
      .def("relin_key_bytes", [](Engine& e) { return e.keys().relin_key().bytes(); })
      .def("encrypt", [](Engine& e, const CArray& values, bool symmetric, int level) {
        Rows r = rows_of(values);
        py::gil_scoped_release rel;
        return e.encrypt(r.values.data(), r.rows, r.count, symmetric, level);
      }, py::arg("values"), py::arg("symmetric") = false, py::arg("level") = -1)
      .def("encode", [](Engine& e, const CArray& values, int level, bool for_multiply) {
        Rows r = rows_of(values);
        const int L = e.tables().max_level();
        const int lv = level < 0 ? L : level;
        if (lv > L) throw ht::InvalidArgument("cannot encode: level " + std::to_string(lv) + " is above the chain");
        const double scale = for_multiply ? ht::plain_mul_scale(e.tables(), lv) : e.tables().scale_at(lv);
        py::gil_scoped_release rel;
        return e.encoder().encode(r.values.data(), r.rows, r.count, lv, scale);
      }, py::arg("values"), py::arg("level") = -1, py::arg("for_multiply") = false)
      .def("mul_plain", [](const Engine& e, const Ciphertext& a, const ht::Plaintext& p) {
        return ht::mul_plain(e.tables(), a, p);
      }, release())
      .def("add_plain", [](const Engine& e, const Ciphertext& a, const ht::Plaintext& p, bool subtract, bool reverse) {
        return ht::sub_plain(e.tables(), a, p, subtract && !reverse, reverse);
      }, py::arg("a"), py::arg("plain"), py::arg("subtract") = false, py::arg("reverse") = false, release())
      .def("decrypt", [](const Engine& e, const Ciphertext& ct) {
        std::vector<std::complex<double>> out;
        {
          py::gil_scoped_release rel;
          out = e.decrypt(ct);
        }
        CArray arr({static_cast<py::ssize_t>(ct.batch), static_cast<py::ssize_t>(e.tables().slots())});
        std::copy(out.begin(), out.end(), arr.mutable_data());
        return arr;
      })
      .def("decrypt_flooded", [](Engine& e, const Ciphertext& ct, double flood_sigma) {
        std::vector<std::complex<double>> out;
        {
          py::gil_scoped_release rel;
          out = e.decrypt_flooded(ct, flood_sigma);
        }
        CArray arr({static_cast<py::ssize_t>(ct.batch), static_cast<py::ssize_t>(e.tables().slots())});
        std::copy(out.begin(), out.end(), arr.mutable_data());
        return arr;
      }, py::arg("ct"), py::arg("flood_sigma"))
      .def("add", [](const Engine& e, const Ciphertext& a, const Ciphertext& b) { return ht::add(e.tables(), a, b); }, release())
      .def("sub", [](const Engine& e, const Ciphertext& a, const Ciphertext& b) { return ht::sub(e.tables(), a, b); }, release())
      .def("negate", [](const Engine& e, const Ciphertext& a) { return ht::negate(e.tables(), a); }, release())
      .def("add_values", [](Engine& e, const Ciphertext& a, const CArray& v, bool subtract, bool reverse) {
        Rows r = rows_of(v);
        py::gil_scoped_release rel;
        return e.add_values(a, r.values.data(), r.rows, r.count, subtract, reverse);
      }, py::arg("a"), py::arg("values"), py::arg("subtract") = false, py::arg("reverse") = false)
      .def("mul_values", [](Engine& e, const Ciphertext& a, const CArray& v) {
        Rows r = rows_of(v);
        py::gil_scoped_release rel;
        return e.mul_values(a, r.values.data(), r.rows, r.count);
      })
      .def("add_scalar", [](const Engine& e, const Ciphertext& a, double c) { return ht::add_scalar(e.tables(), a, c); }, release())
      .def("mul_scalar", [](const Engine& e, const Ciphertext& a, double c) { return ht::mul_scalar(e.tables(), a, c); }, release())
      .def("multiply", [](Engine& e, const Ciphertext& a, const Ciphertext& b) {
        return ht::multiply(e.tables(), e.keys(), a, b);
      }, release())
      .def("square", [](Engine& e, const Ciphertext& a) { return ht::square(e.tables(), e.keys(), a); }, release())
      .def("multiply_no_relin", [](const Engine& e, const Ciphertext& a, const Ciphertext& b) {
        return ht::multiply_no_relin(e.tables(), a, b);
      }, release())
      .def("relinearize", [](Engine& e, const Ciphertext& a) { return ht::relinearize(e.tables(), e.keys(), a); }, release())
      .def("rescale", [](const Engine& e, const Ciphertext& a) { return ht::rescale(e.tables(), a); }, release())
      .def("level_to", [](const Engine& e, const Ciphertext& a, int level) { return ht::level_to(e.tables(), a, level); }, release())
      .def("rotate", [](Engine& e, const Ciphertext& a, long step) { return ht::rotate(e.tables(), e.keys(), a, step); }, release())
      .def("rotate_hoisted", [](Engine& e, const Ciphertext& a, const std::vector<long>& steps) {
        return ht::rotate_hoisted(e.tables(), e.keys(), a, steps);
      }, release())
      .def("conjugate", [](Engine& e, const Ciphertext& a) { return ht::conjugate(e.tables(), e.keys(), a); }, release());
}
