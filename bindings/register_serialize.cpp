// Binary format (ckks/serialize.hpp): objects to bytes and back. Bytes are
// written straight into a Python bytes object; loading reads any buffer
// (bytes, memoryview, mmap) without copying it first. The GIL is released
// while polynomials are copied.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ckks/serialize.hpp"

namespace py = pybind11;
using namespace ht;

namespace {
py::bytes make_bytes(format::Header h, const std::function<void(format::Writer&)>& body) {
  PyObject* obj = nullptr;
  {
    py::gil_scoped_release rel;
    serialize_object(h, body, [&](size_t total) -> u8* {
      py::gil_scoped_acquire acq;
      obj = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(total));
      if (!obj) throw py::error_already_set();
      return reinterpret_cast<u8*>(PyBytes_AS_STRING(obj));
    });
  }
  return py::reinterpret_steal<py::bytes>(obj);
}

// Writes straight into a memory-mapped file, so a multi-gigabyte context
// never exists twice in memory.
void write_file(const std::string& path, format::Header h, const std::function<void(format::Writer&)>& body) {
  int fd = -1;
  u8* map = nullptr;
  size_t size = 0;
  auto cleanup = [&] {
    if (map) munmap(map, size);
    if (fd >= 0) close(fd);
  };
  try {
    py::gil_scoped_release rel;
    serialize_object(h, body, [&](size_t total) -> u8* {
      fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
      if (fd < 0) throw std::runtime_error("cannot open " + path + " for writing: " + std::strerror(errno));
      if (ftruncate(fd, static_cast<off_t>(total)) != 0)
        throw std::runtime_error("cannot size " + path + ": " + std::strerror(errno));
      void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED) throw std::runtime_error("cannot map " + path + ": " + std::strerror(errno));
      map = static_cast<u8*>(p);
      size = total;
      return map;
    });
    if (msync(map, size, MS_SYNC) != 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
}

struct View {
  py::buffer_info info;
  const u8* data() const { return static_cast<const u8*>(info.ptr); }
  size_t size() const { return static_cast<size_t>(info.size * info.itemsize); }
};
View view(const py::buffer& b) {
  View v{b.request()};
  if (v.info.ndim != 1 || (v.info.ndim == 1 && v.info.strides[0] != v.info.itemsize))
    throw FormatError("expected a contiguous bytes-like object");
  return v;
}
Validation validation(bool unsafe) { return unsafe ? Validation::kUnsafe : Validation::kFull; }

// The header of a context record; refuses a secret-key export from a public context.
format::Header context_header(const Engine& e, bool with_secret, bool compress) {
  format::Header h;
  h.type = format::Type::kContext;
  h.flags = compress ? format::kFlagSeeded : 0;
  h.param_hash = e.tables().params().hash();
  h.key_id = e.keys().key_id();
  if (with_secret && !e.keys().has_secret())
    throw InvalidArgument("cannot export the secret key: this is a public context");
  return h;
}

// Loads a ciphertext or plaintext batch (T) of the given record type and
// returns (object, attrs bytes); the parsing runs without the GIL.
template <typename T>
py::tuple load_batch_as(const Engine& e, const py::buffer& b, format::Type type, bool unsafe) {
  View v = view(b);
  LoadedBatch out;
  {
    py::gil_scoped_release rel;
    out = load_batch(v.data(), v.size(), e, type, validation(unsafe));
  }
  T obj;
  static_cast<PolyBatch&>(obj) = std::move(out.batch);
  return py::make_tuple(std::move(obj), py::bytes(out.attrs));
}
}  // namespace

void register_serialize(py::module_& m) {
  m.attr("FORMAT_VERSION") = format::kVersion;
  m.attr("FORMAT_HEADER_BYTES") = format::kHeaderBytes;
  m.def("serialize_context", [](const Engine& e, const std::string& attrs, bool with_secret, bool compress) {
    const format::Header h = context_header(e, with_secret, compress);
    return make_bytes(h, [&](format::Writer& w) { write_context(w, e, attrs, with_secret, compress); });
  }, py::arg("engine"), py::arg("attrs"), py::arg("with_secret") = false, py::arg("compress") = true);
  m.def("save_context_file", [](const Engine& e, const std::string& path, const std::string& attrs, bool with_secret,
                                bool compress) {
    const format::Header h = context_header(e, with_secret, compress);
    write_file(path, h, [&](format::Writer& w) { write_context(w, e, attrs, with_secret, compress); });
  }, py::arg("engine"), py::arg("path"), py::arg("attrs"), py::arg("with_secret") = false, py::arg("compress") = true);
  m.def("deserialize_context", [](const py::buffer& b, bool allow_insecure, bool unsafe) {
    View v = view(b);
    LoadedContext out;
    {
      py::gil_scoped_release rel;
      out = load_context(v.data(), v.size(), allow_insecure, validation(unsafe));
    }
    return py::make_tuple(std::move(out.engine), py::bytes(out.attrs));
  }, py::arg("data"), py::arg("allow_insecure") = false, py::arg("unsafe") = false);

  auto write_pb = [](const Engine& e, const PolyBatch& pb, const std::string& attrs, bool compress,
                     format::Type type) {
    if (pb.context_id != e.tables().id())
      throw InvalidArgument("cannot save: the object belongs to another context");
    format::Header h;
    h.type = type;
    const bool seeded = compress && can_store_seeds(e.tables(), pb);
    h.flags = seeded ? format::kFlagSeeded : 0;
    h.param_hash = e.tables().params().hash();
    h.key_id = type == format::Type::kCiphertext ? e.keys().key_id() : 0;
    return make_bytes(h, [&](format::Writer& w) { write_batch(w, e.tables(), pb, attrs, seeded); });
  };
  m.def("serialize_ciphertext", [write_pb](const Engine& e, const Ciphertext& c, const std::string& attrs,
                                            bool compress) {
    return write_pb(e, c, attrs, compress, format::Type::kCiphertext);
  }, py::arg("engine"), py::arg("ct"), py::arg("attrs"), py::arg("compress") = true);
  m.def("serialize_plaintext", [write_pb](const Engine& e, const Plaintext& p, const std::string& attrs) {
    return write_pb(e, p, attrs, false, format::Type::kPlaintext);
  }, py::arg("engine"), py::arg("pt"), py::arg("attrs"));
  m.def("deserialize_ciphertext", [](const Engine& e, const py::buffer& b, bool unsafe) {
    return load_batch_as<Ciphertext>(e, b, format::Type::kCiphertext, unsafe);
  }, py::arg("engine"), py::arg("data"), py::arg("unsafe") = false);
  m.def("deserialize_plaintext", [](const Engine& e, const py::buffer& b, bool unsafe) {
    return load_batch_as<Plaintext>(e, b, format::Type::kPlaintext, unsafe);
  }, py::arg("engine"), py::arg("data"), py::arg("unsafe") = false);

  m.def("serialize_params", [](const Engine& e) {
    format::Header h;
    h.type = format::Type::kParams;
    h.param_hash = e.tables().params().hash();
    return make_bytes(h, [&](format::Writer& w) { write_params(w, e.tables().params()); });
  }, py::arg("engine"));
  m.def("deserialize_params", [](const py::buffer& b, bool unsafe) {
    View v = view(b);
    return load_params(v.data(), v.size(), validation(unsafe));
  }, py::arg("data"), py::arg("unsafe") = false);
  m.def("serialize_blob", [](ht::u64 param_hash, const std::string& payload) {
    format::Header h;
    h.type = format::Type::kBlob;
    h.param_hash = param_hash;
    return make_bytes(h, [&](format::Writer& w) { w.bytes(payload.data(), payload.size()); });
  }, py::arg("param_hash"), py::arg("payload"));
  m.def("deserialize_blob", [](const py::buffer& b, bool unsafe) {
    View v = view(b);
    return py::bytes(load_blob(v.data(), v.size(), validation(unsafe)));
  }, py::arg("data"), py::arg("unsafe") = false);
  m.def("read_header", [](const py::buffer& b) {
    View v = view(b);
    if (v.size() < format::kHeaderBytes)
      throw FormatError("not a hetensor object: shorter than the " + std::to_string(format::kHeaderBytes) +
                        "-byte header");
    // Header fields only: the length check against the data happens in the loaders.
    std::vector<u8> head(v.data(), v.data() + format::kHeaderBytes);
    format::Header h;
    format::Reader r(head.data() + 8, format::kHeaderBytes - 8);
    h.version = r.get<u16>("version");
    const u16 type = r.get<u16>("type");
    h.flags = r.get<u32>("flags");
    h.param_hash = r.get<u64>("hash");
    h.key_id = r.get<u64>("key id");
    h.payload_len = r.get<u64>("length");
    if (std::memcmp(head.data(), "HETENSOR", 8) != 0) throw FormatError("not a hetensor object (bad magic bytes)");
    format::check_version(h.version);
    py::dict d;
    d["type"] = type;
    d["flags"] = h.flags;
    d["param_hash"] = h.param_hash;
    d["key_id"] = h.key_id;
    d["payload_len"] = h.payload_len;
    return d;
  }, py::arg("data"));
  m.def("key_id", [](const Engine& e) { return e.keys().key_id(); });
  // For tests and fuzzing that must get past the checksum to reach the parsers.
  m.def("format_checksum", [](const py::buffer& b) {
    View v = view(b);
    return format::checksum(v.data(), v.size());
  }, py::arg("payload"));
}
