// Low-level ring functions for tests and benchmarks: prime search, NTT of
// raw residues, thread count. Not part of the stable API.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <mutex>

#include "backend/cpu_ntt.hpp"
#include "backend/cpu_simd.hpp"
#include "core/aes.hpp"
#include "core/error.hpp"
#include "core/numth.hpp"
#include "runtime/allocator.hpp"
#include "runtime/parallel.hpp"

namespace py = pybind11;
using U64Array = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;

namespace {
// Tables are cached per (q, N) so that timing a transform does not time the
// root search and table construction.
const ht::NttTables& tables_for(ht::u64 q, ht::u64 n) {
  static std::mutex mutex;
  static std::map<std::pair<ht::u64, ht::u64>, std::unique_ptr<ht::NttTables>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[{q, n}];
  if (!slot) slot = std::make_unique<ht::NttTables>(q, n);
  return *slot;
}

// Ring degrees the core supports: powers of two in [2, 2^17].
void check_degree(const char* op, ht::u64 n) {
  if (n < 2 || n > (ht::u64(1) << 17) || (n & (n - 1)) != 0)
    throw ht::InvalidArgument(std::string(op) + ": n must be a power of two in [2, 2^17], got " + std::to_string(n));
}

U64Array transform(const U64Array& a, ht::u64 q, bool inverse) {
  if (a.ndim() != 1) throw ht::InvalidArgument("expected a 1-D array of residues");
  const ht::u64 n = static_cast<ht::u64>(a.shape(0));
  if (!ht::is_prime(q)) throw ht::InvalidArgument("q must be a prime");
  const ht::NttTables& t = tables_for(q, n);
  U64Array out(a.shape(0));
  std::copy(a.data(), a.data() + n, out.mutable_data());
  for (ht::u64 k = 0; k < n; ++k)
    if (out.data()[k] >= q) throw ht::InvalidArgument("residues must be < q");
  {
    py::gil_scoped_release r;
    if (inverse) ht::cpu::ntt_inverse(out.mutable_data(), t);
    else ht::cpu::ntt_forward(out.mutable_data(), t);
  }
  return out;
}
}  // namespace

void register_ring(py::module_& m) {
  m.def("is_prime", &ht::is_prime);
  m.def("ntt_prime", [](int bits, ht::u64 n) {
    if (bits < 20 || bits > 61) throw ht::InvalidArgument("ntt_prime: bits must be in [20, 61]");
    check_degree("ntt_prime", n);
    return ht::closest_ntt_prime(std::ldexp(1.0, bits) - 1, n, bits, {});
  }, py::arg("bits"), py::arg("n"));
  m.def("ntt_forward", [](const U64Array& a, ht::u64 q) { return transform(a, q, false); });
  m.def("ntt_inverse", [](const U64Array& a, ht::u64 q) { return transform(a, q, true); });
  m.def("primitive_2n_root", [](ht::u64 q, ht::u64 n) {
    check_degree("primitive_2n_root", n);
    if (q < 3 || q >= (ht::u64(1) << 62) || !ht::is_prime(q))
      throw ht::InvalidArgument("primitive_2n_root: q must be a prime below 2^62");
    return ht::primitive_2n_root(q, n);
  }, py::arg("q"), py::arg("n"));
  m.def("set_simd_enabled", &ht::cpu::set_simd_enabled, py::arg("enabled"),
        "Use the AVX2/FMA kernels where the CPU has them (False: the portable path everywhere).");
  m.def("simd_enabled", &ht::cpu::simd_enabled);
  m.def("set_num_threads", &ht::set_num_threads, py::arg("threads"));
  m.def("max_num_threads", &ht::max_num_threads);
  m.def("get_num_threads", &ht::get_num_threads);
  m.def("pool_cached_bytes", &ht::pool_cached_bytes,
        "Bytes of freed buffers the core keeps for reuse.");
  m.def("pool_release_cached", &ht::pool_release_cached,
        "Free every cached buffer and return free heap pages to the system.");
  m.def("pool_set_cache_limit", &ht::pool_set_cache_limit, py::arg("bytes"),
        "Cap the bytes of freed buffers kept for reuse (blocks above the cap are freed now).");
  m.def("pool_cache_limit", &ht::pool_cache_limit);
  m.def("aes256_ctr", [](py::bytes key, ht::u32 stream, ht::u64 start, ht::u64 blocks, const std::string& path) {
    const std::string k = key;
    if (k.size() != 32) throw ht::InvalidArgument("aes256_ctr: the key must be 32 bytes");
    if (blocks > (ht::u64(1) << 24)) throw ht::InvalidArgument("aes256_ctr: at most 2^24 blocks");
    std::array<ht::u32, 8> kw{};
    for (int i = 0; i < 32; ++i) kw[i / 4] |= static_cast<ht::u32>(static_cast<unsigned char>(k[i])) << (8 * (i % 4));
    ht::AesPath p = ht::AesPath::kBest;
    if (path == "portable") p = ht::AesPath::kPortable;
    else if (path == "aesni") p = ht::AesPath::kAesNi;
    else if (path != "best") throw ht::InvalidArgument("aes256_ctr: path must be 'best', 'aesni' or 'portable'");
    U64Array out(static_cast<py::ssize_t>(2 * blocks));
    {
      py::gil_scoped_release release;
      ht::Aes256(kw).ctr_words(stream, start, blocks, out.mutable_data(), p);
    }
    return out;
  }, py::arg("key"), py::arg("stream"), py::arg("start"), py::arg("blocks"), py::arg("path") = "best",
     "AES-256 of the counter blocks (index | stream | 'htA1') as little-endian u64 pairs (tests).");
  m.def("aes256_uniform_mod_q", [](py::bytes key, ht::u32 stream, ht::u64 q, ht::u64 n) {
    const std::string k = key;
    if (k.size() != 32) throw ht::InvalidArgument("aes256_uniform_mod_q: the key must be 32 bytes");
    if (q < 2) throw ht::InvalidArgument("aes256_uniform_mod_q: the modulus q must be >= 2");
    if (n < 1 || n > (ht::u64(1) << 26)) throw ht::InvalidArgument("aes256_uniform_mod_q: n must be in [1, 2^26]");
    std::array<ht::u32, 8> kw{};
    for (int i = 0; i < 32; ++i) kw[i / 4] |= static_cast<ht::u32>(static_cast<unsigned char>(k[i])) << (8 * (i % 4));
    U64Array out(static_cast<py::ssize_t>(n));
    {
      py::gil_scoped_release release;
      ht::uniform_mod_q(ht::Aes256(kw), stream, q, out.mutable_data(), n);
    }
    return out;
  }, py::arg("key"), py::arg("stream"), py::arg("q"), py::arg("n"),
     "n values uniform in [0, q) from AES-256-CTR words (the sampler of the a halves; tests).");
  m.def("aes256_encrypt_block", [](py::bytes key, py::bytes block) {
    const std::string k = key, b = block;
    if (k.size() != 32 || b.size() != 16)
      throw ht::InvalidArgument("aes256_encrypt_block: need a 32-byte key and a 16-byte block");
    std::array<ht::u32, 8> kw{};
    for (int i = 0; i < 32; ++i) kw[i / 4] |= static_cast<ht::u32>(static_cast<unsigned char>(k[i])) << (8 * (i % 4));
    unsigned char out[16];
    ht::Aes256(kw).encrypt_block(reinterpret_cast<const unsigned char*>(b.data()), out);
    return py::bytes(reinterpret_cast<const char*>(out), 16);
  }, py::arg("key"), py::arg("block"), "One AES-256 block, portable path (FIPS 197 tests).");
  m.def("aes_ni_enabled", &ht::aes_ni_enabled);
  m.def("bit_reverse", [](ht::u64 x, int bits) {
    if (bits < 0 || bits > 63 || (bits < 64 && (x >> bits) != 0))
      throw ht::InvalidArgument("bit_reverse: need 0 <= bits <= 63 and x < 2^bits");
    return ht::bit_reverse(x, bits);
  }, py::arg("x"), py::arg("bits"));
}
