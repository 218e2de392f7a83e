// Packed matrix products (cpp/linalg): block linear maps, sums of rotated
// products, regrouping of ciphertext batches, on host ciphertexts and (in
// register_linalg_resident, after the resident types) on device-resident
// ones. Policy (layouts, algorithm choice) lives in python/hetensor/linalg.
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "ckks/engine.hpp"
#include "ckks/resident.hpp"
#include "core/error.hpp"
#include "linalg/batch.hpp"
#include "linalg/blockmap.hpp"
#include "linalg/products.hpp"
#include "linalg/program.hpp"

namespace py = pybind11;
namespace la = ht::linalg;
using CArray = py::array_t<std::complex<double>, py::array::c_style | py::array::forcecast>;
using LArray = py::array_t<long, py::array::c_style | py::array::forcecast>;

namespace {
std::vector<long> to_vec(const LArray& a) { return std::vector<long>(a.data(), a.data() + a.size()); }

py::dict cost_dict(const la::Cost& c) {
  py::dict d;
  d["rotations"] = c.rotations;
  d["hoisted"] = c.hoisted;
  d["decompositions"] = c.decompositions;
  d["relinearizations"] = c.relinearizations;
  d["plain_mults"] = c.plain_mults;
  d["tensor_products"] = c.tensor_products;
  d["rescales"] = c.rescales;
  d["encodes"] = c.encodes;
  return d;
}
// A program step of `kind` reading registers a (and b); the caller fills the kind's fields.
la::ProgramStep step(la::ProgramStep::Kind kind, int a, int b = -1) {
  la::ProgramStep s;
  s.kind = kind;
  s.a = a;
  s.b = b;
  return s;
}
std::vector<la::BilinearRound> parse_rounds(const py::list& rounds) {
  std::vector<la::BilinearRound> rs;
  for (auto item : rounds) {
    auto tup = py::cast<py::tuple>(item);
    la::BilinearRound r;
    r.a_step = py::cast<long>(tup[0]);
    r.b_step = py::cast<long>(tup[1]);
    if (tup.size() > 3) r.outer = py::cast<long>(tup[3]);
    LArray t = py::cast<LArray>(tup[2]);
    if (t.size() % 3) throw ht::InvalidArgument("product terms come as (out, a, b) triples");
    for (py::ssize_t k = 0; k < t.size() / 3; ++k)
      r.terms.push_back({static_cast<int>(t.data()[3 * k]), static_cast<int>(t.data()[3 * k + 1]),
                         static_cast<int>(t.data()[3 * k + 2])});
    rs.push_back(std::move(r));
  }
  return rs;
}
}  // namespace

void register_linalg(py::module_& m) {
  py::class_<la::BlockMap, std::shared_ptr<la::BlockMap>>(m, "BlockMap")
      .def_property_readonly("in_cts", [](const la::BlockMap& b) { return b.plan.in_cts; })
      .def_property_readonly("out_cts", [](const la::BlockMap& b) { return b.plan.out_cts; })
      .def_property_readonly("n1", [](const la::BlockMap& b) { return b.plan.n1; })
      .def_property_readonly("diagonals", [](const la::BlockMap& b) { return b.plan.diagonals(); })
      .def_property_readonly("norm_inf", [](const la::BlockMap& b) { return b.plan.norm_inf; })
      .def_property_readonly("level", [](const la::BlockMap& b) { return b.level; })
      .def_property_readonly("babies", [](const la::BlockMap& b) { return b.plan.babies; })
      .def_property_readonly("giants", [](const la::BlockMap& b) {
        std::vector<std::vector<std::pair<long, long>>> g;  // per output: (giant step, terms)
        for (auto& o : b.plan.outputs) {
          g.emplace_back();
          for (auto& x : o) g.back().push_back({x.step, static_cast<long>(x.terms.size())});
        }
        return g;
      })
      .def_readwrite("work_bytes", &la::BlockMap::work_bytes)
      .def_property_readonly("cached", &la::BlockMap::cached)
      .def_property_readonly("nbytes", &la::BlockMap::bytes)
      .def("rotation_steps", [](const la::BlockMap& b) { return b.plan.rotation_steps(); })
      .def("predicted", [](const la::BlockMap& b, long groups) { return cost_dict(b.plan.predicted(groups)); })
      .def("encoded", [](const la::BlockMap& b, ht::Engine& e, int level, bool cache) {
        auto out = std::make_shared<la::BlockMap>(la::make_block_map(b.plan, b.source));
        {
          py::gil_scoped_release r;
          la::encode_block_map(e.encoder(), *out, level, cache);
        }
        return out;
      }, py::arg("engine"), py::arg("level"), py::arg("cache") = true);

  m.def("linalg_entry_map", [](long slots, int in_cts, int out_cts, const LArray& oc, const LArray& os,
                               const LArray& ic, const LArray& is, const CArray& coef, long n1) {
    std::vector<long> voc = to_vec(oc), vos = to_vec(os), vic = to_vec(ic), vis = to_vec(is);
    std::vector<std::complex<double>> vc(coef.data(), coef.data() + coef.size());
    py::gil_scoped_release r;
    auto src = la::entry_source(slots, voc, vos, vic, vis, vc);
    for (auto& k : src->keys)
      if (k[0] >= out_cts || k[1] >= in_cts) throw ht::InvalidArgument("cannot build a slot map: ciphertext index out of range");
    auto plan = la::plan_map(slots, in_cts, out_cts, src->keys, n1);
    return std::make_shared<la::BlockMap>(la::make_block_map(std::move(plan), src));
  }, py::arg("slots"), py::arg("in_cts"), py::arg("out_cts"), py::arg("oc"), py::arg("os"), py::arg("ic"),
     py::arg("is_"), py::arg("coef"), py::arg("n1") = 0);

  m.def("linalg_matmul_map", [](long slots, long bm, long br_in, long bc_in, long nb_in, long br_out, long bc_out,
                                long nb_out, bool right, const CArray& w, long n1) {
    if (w.ndim() != 2) throw ht::InvalidArgument("the weight must be a 2-D array");
    la::MatmulGeometry g{slots, bm, br_in, bc_in, nb_in, br_out, bc_out, nb_out};
    const long rows = static_cast<long>(w.shape(0)), cols = static_cast<long>(w.shape(1));
    std::vector<std::complex<double>> vw(w.data(), w.data() + w.size());
    py::gil_scoped_release r;
    auto src = la::matmul_source(g, right, rows, cols, std::move(vw));
    const int in_cts = static_cast<int>(nb_in), out_cts = static_cast<int>(nb_out);
    auto plan = la::plan_map(slots, in_cts, out_cts, src->keys, n1);
    return std::make_shared<la::BlockMap>(la::make_block_map(std::move(plan), src));
  }, py::arg("slots"), py::arg("bm"), py::arg("br_in"), py::arg("bc_in"), py::arg("nb_in"), py::arg("br_out"),
     py::arg("bc_out"), py::arg("nb_out"), py::arg("right"), py::arg("w"), py::arg("n1") = 0);

  m.def("linalg_apply_map", [](ht::Engine& e, const ht::Ciphertext& ct, const la::BlockMap& map, int inner_groups) {
    la::Cost c;
    ht::Ciphertext out;
    {
      py::gil_scoped_release r;
      out = la::apply_block_map(e.tables(), e.keys(), e.encoder(), ct, map, inner_groups, &c);
    }
    return py::make_tuple(std::move(out), cost_dict(c));
  }, py::arg("engine"), py::arg("ct"), py::arg("map"), py::arg("inner_groups") = 1);

  m.def("linalg_bilinear", [](ht::Engine& e, const ht::Ciphertext& a, const ht::Ciphertext& b,
                                          const py::list& rounds, int outputs, bool chain_a, bool chain_b) {
    std::vector<la::BilinearRound> rs = parse_rounds(rounds);
    la::Cost c;
    ht::Ciphertext out;
    {
      py::gil_scoped_release r;
      out = la::bilinear_sum(e.tables(), e.keys(), a, b, rs, outputs, &c, chain_a, chain_b);
    }
    return py::make_tuple(std::move(out), cost_dict(c));
  }, py::arg("engine"), py::arg("a"), py::arg("b"), py::arg("rounds"), py::arg("outputs"), py::arg("chain_a") = false,
     py::arg("chain_b") = false);
  m.def("linalg_bilinear_steps", [](long slots, const py::list& rounds, bool chain_a, bool chain_b) {
    return la::bilinear_steps(slots, parse_rounds(rounds), chain_a, chain_b);
  });

  m.def("linalg_rotate_sum", [](ht::Engine& e, const ht::Ciphertext& ct, const std::vector<long>& steps) {
    la::Cost c;
    ht::Ciphertext out;
    {
      py::gil_scoped_release r;
      out = la::rotate_sum(e.tables(), e.keys(), ct, steps, &c);
    }
    return py::make_tuple(std::move(out), cost_dict(c));
  });

  m.def("linalg_gather", [](ht::Engine& e, const ht::Ciphertext& ct, const std::vector<int>& idx) {
    return la::gather(e.tables(), ct, idx);
  }, py::call_guard<py::gil_scoped_release>());

  m.def("linalg_assemble", [](ht::Engine& e, const std::vector<std::pair<const ht::Ciphertext*, int>>& items) {
    return la::assemble(e.tables(), items);
  });

  m.def("linalg_zeros", [](ht::Engine& e, const ht::Ciphertext& like, int count) {
    if (count < 1 || count > (1 << 16)) throw ht::InvalidArgument("linalg_zeros: count must be in [1, 65536]");
    return la::zeros_like(e.tables(), like, count);
  });

  // One call per matrix product: the steps recorded by hetensor.linalg.runmode.
  using Step = la::ProgramStep;
  py::class_<la::Program>(m, "LinalgProgram")
      .def(py::init<>())
      .def_property_readonly("inputs", &la::Program::inputs)
      .def_property_readonly("registers", &la::Program::registers)
      .def("__len__", [](const la::Program& p) { return p.steps().size(); })
      .def("add_input", &la::Program::add_input)
      .def("map", [](la::Program& p, int src, std::shared_ptr<la::BlockMap> map, int inner_groups) {
        if (!map || map->level < 0) throw ht::InvalidArgument("cannot record a map step: the map is not encoded");
        Step s = step(Step::Kind::map, src);
        s.map = std::move(map);
        s.inner_groups = inner_groups;
        return p.add(std::move(s));
      }, py::arg("src"), py::arg("map"), py::arg("inner_groups") = 1)
      .def("rotate_sum", [](la::Program& p, int src, const std::vector<long>& steps) {
        Step s = step(Step::Kind::rotate_sum, src);
        s.steps = steps;
        return p.add(std::move(s));
      }, py::arg("src"), py::arg("steps"))
      .def("bilinear", [](la::Program& p, int a, int b, const py::list& rounds, int outputs, bool chain_a,
                                      bool chain_b) {
        Step s = step(Step::Kind::bilinear, a, b);
        s.rounds = parse_rounds(rounds);
        s.outputs = outputs;
        s.chain_a = chain_a;
        s.chain_b = chain_b;
        return p.add(std::move(s));
      }, py::arg("a"), py::arg("b"), py::arg("rounds"), py::arg("outputs"), py::arg("chain_a") = false,
         py::arg("chain_b") = false)
      .def("gather", [](la::Program& p, int src, const std::vector<int>& idx) {
        Step s = step(Step::Kind::gather, src);
        s.idx = idx;
        return p.add(std::move(s));
      }, py::arg("src"), py::arg("idx"))
      .def("add", [](la::Program& p, int a, int b) {
        return p.add(step(Step::Kind::add, a, b));
      }, py::arg("a"), py::arg("b"))
      .def("mul_values", [](la::Program& p, int src, const CArray& values) {
        if (values.ndim() != 2) throw ht::InvalidArgument("cannot record mul_values: values must be rows x count");
        Step s = step(Step::Kind::mul_values, src);
        s.rows = static_cast<int>(values.shape(0));
        s.count = static_cast<ht::u64>(values.shape(1));
        s.values.assign(values.data(), values.data() + values.size());
        return p.add(std::move(s));
      }, py::arg("src"), py::arg("values"))
      .def("run", [](const la::Program& p, ht::Engine& e, const std::vector<const ht::Ciphertext*>& inputs,
                     const std::vector<int>& outputs) {
        std::vector<la::Cost> costs;
        std::vector<ht::Ciphertext> out;
        {
          py::gil_scoped_release r;
          out = p.run(e, inputs, outputs, &costs);
        }
        py::list counts;
        for (const auto& c : costs) counts.append(cost_dict(c));
        return py::make_tuple(std::move(out), counts);
      }, py::arg("engine"), py::arg("inputs"), py::arg("outputs"));
}

// The same calls on device-resident ciphertexts (overloads; registered after
// register_resident so the signatures name DeviceCiphertext).
void register_linalg_resident(py::module_& m) {
  using ht::DeviceCiphertext;
  m.def("linalg_apply_map", [](ht::Engine& e, const DeviceCiphertext& ct, const la::BlockMap& map, int inner_groups) {
    la::Cost c;
    DeviceCiphertext out;
    {
      py::gil_scoped_release r;
      out = la::apply_block_map(e.tables(), e.keys(), e.encoder(), ct, map, inner_groups, &c);
    }
    return py::make_tuple(std::move(out), cost_dict(c));
  }, py::arg("engine"), py::arg("ct"), py::arg("map"), py::arg("inner_groups") = 1);
  m.def("linalg_bilinear", [](ht::Engine& e, const DeviceCiphertext& a, const DeviceCiphertext& b,
                              const py::list& rounds, int outputs, bool chain_a, bool chain_b) {
    std::vector<la::BilinearRound> rs = parse_rounds(rounds);
    la::Cost c;
    DeviceCiphertext out;
    {
      py::gil_scoped_release r;
      out = la::bilinear_sum(e.tables(), e.keys(), a, b, rs, outputs, &c, chain_a, chain_b);
    }
    return py::make_tuple(std::move(out), cost_dict(c));
  }, py::arg("engine"), py::arg("a"), py::arg("b"), py::arg("rounds"), py::arg("outputs"), py::arg("chain_a") = false,
     py::arg("chain_b") = false);
  m.def("linalg_rotate_sum", [](ht::Engine& e, const DeviceCiphertext& ct, const std::vector<long>& steps) {
    la::Cost c;
    DeviceCiphertext out;
    {
      py::gil_scoped_release r;
      out = la::rotate_sum(e.tables(), e.keys(), ct, steps, &c);
    }
    return py::make_tuple(std::move(out), cost_dict(c));
  });
  m.def("linalg_gather", [](ht::Engine& e, const DeviceCiphertext& ct, const std::vector<int>& idx) {
    return la::gather(e.tables(), ct, idx);
  }, py::call_guard<py::gil_scoped_release>());
  m.def("linalg_assemble", [](ht::Engine& e, const std::vector<std::pair<const DeviceCiphertext*, int>>& items) {
    return la::assemble(e.tables(), items);
  });
  m.def("linalg_zeros", [](ht::Engine& e, const DeviceCiphertext& like, int count) {
    if (count < 1 || count > (1 << 16)) throw ht::InvalidArgument("linalg_zeros: count must be in [1, 65536]");
    return ht::resident::make_batch(e.tables(), like.backend(), count, 2, like.level, like.scale, true);
  });
  py::object cls = m.attr("LinalgProgram");
  cls.attr("run") = py::cpp_function(
      [](const la::Program& p, ht::Engine& e, const std::vector<const DeviceCiphertext*>& inputs,
         const std::vector<int>& outputs) {
        std::vector<la::Cost> costs;
        std::vector<DeviceCiphertext> out;
        {
          py::gil_scoped_release r;
          out = p.run(e, inputs, outputs, &costs);
        }
        py::list counts;
        for (const auto& c : costs) counts.append(cost_dict(c));
        return py::make_tuple(std::move(out), counts);
      },
      py::name("run"), py::is_method(cls), py::sibling(py::getattr(cls, "run", py::none())), py::arg("engine"),
      py::arg("inputs"), py::arg("outputs"));
}
