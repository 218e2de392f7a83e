// Device-resident ciphertexts and plaintexts: the residues of a batch live in
// the memory of one backend (host pool for the CPU, a stream-ordered pool on
// a GPU) and every operation on them is a sequence of backend::Backend calls,
// so nothing here touches a residue from the host. Results are bit-identical
// to the host evaluator (ckks/evaluator), which tests check on the CPU
// backend; the CUDA backend runs the same sequence of the same kernel bodies.
// Copies between host and device happen only in upload/download.
// Layout as PolyBatch: [batch][size][level + 1][N], NTT domain.
#pragma once
#include <string>

#include "backend/backend.hpp"
#include "ckks/ciphertext.hpp"
#include "ckks/tables.hpp"

namespace ht {

struct DeviceBatch {
  backend::DeviceBuffer data;  // on data.owner()
  u64 n = 0;
  int batch = 0;
  int size = 0;
  int level = 0;
  double scale = 1.0;
  u64 context_id = 0;
  double bound = 0.0;

  int limbs() const { return level + 1; }
  backend::Backend& backend() const { return *data.owner(); }
  std::string device() const { return data.owner()->device().name(); }
  std::size_t words() const { return data.size(); }
  u64* poly(int b, int k) { return data.data() + (static_cast<size_t>(b) * size + k) * limbs() * n; }
  const u64* poly(int b, int k) const { return data.data() + (static_cast<size_t>(b) * size + k) * limbs() * n; }
};

struct DeviceCiphertext : DeviceBatch {};
struct DevicePlaintext : DeviceBatch {};

namespace resident {

// Host -> device (a copy; the seeds of symmetric encryption are not kept).
DeviceCiphertext upload(const Ciphertext& ct, backend::Backend& be);
DevicePlaintext upload(const Plaintext& pt, backend::Backend& be);
// Device -> host.
Ciphertext download(const DeviceCiphertext& ct);
// A copy on the same device.
DeviceCiphertext copy(const DeviceCiphertext& ct);

// The same level and scale effects as the host functions of ckks/evaluator.
DeviceCiphertext add(const Tables& ctx, const DeviceCiphertext& a, const DeviceCiphertext& b);  // level min(a, b)
DeviceCiphertext sub(const Tables& ctx, const DeviceCiphertext& a, const DeviceCiphertext& b);  // level min(a, b)
DeviceCiphertext negate(const Tables& ctx, const DeviceCiphertext& a);                           // no level
// p on the device of a, at a's level or above, encoded for multiply: consumes one level.
DeviceCiphertext mul_plain(const Tables& ctx, const DeviceCiphertext& a, const DevicePlaintext& p);
// The size-3 tensor product (no relinearization, no level).
DeviceCiphertext multiply_no_relin(const Tables& ctx, const DeviceCiphertext& a, const DeviceCiphertext& b);
DeviceCiphertext rescale(const Tables& ctx, const DeviceCiphertext& a);                    // consumes one level
DeviceCiphertext level_to(const Tables& ctx, const DeviceCiphertext& a, int level);        // down to `level`

// What to say about an operation that runs on host ciphertexts only
// (the bindings raise it as NotImplementedError).
std::string unsupported_message(const std::string& op, const std::string& device);

}  // namespace resident
}  // namespace ht
