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
#include <vector>

#include "backend/backend.hpp"
#include "ckks/ciphertext.hpp"
#include "ckks/keys.hpp"
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
// `batch` ciphertexts of `size` polynomials at `level` and `scale` in the memory of `be`:
// zeros, or uninitialized (zero = false) for a result that is written whole.
DeviceCiphertext make_batch(const Tables& ctx, backend::Backend& be, int batch, int size, int level, double scale,
                            bool zero);

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
// a - p (negate_plain), p - a (negate_ct) or a + p; p at a's scale, at a's level or above: no level.
DeviceCiphertext add_plain(const Tables& ctx, const DeviceCiphertext& a, const DevicePlaintext& p, bool negate_plain,
                           bool negate_ct);
DeviceCiphertext add_scalar(const Tables& ctx, const DeviceCiphertext& a, double c);  // no level
// An integer |c| costs no level, any other value one level (as the host's).
DeviceCiphertext mul_scalar(const Tables& ctx, const DeviceCiphertext& a, double c);

// Key switching (resident_switch.cpp), the keys read where the backend is
// (KeyChain::device_key: uploaded once per device and kept with the chain).
DeviceCiphertext relinearize(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a);  // no level
// Size 3 at level l -> size 2 at l - 1: relinearization and rescale in one ModDown.
DeviceCiphertext relinearize_rescale(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a);
// Relinearized and rescaled product: consumes one level.
DeviceCiphertext multiply(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a,
                          const DeviceCiphertext& b);
DeviceCiphertext square(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a);
// Slot rotation out[i] = in[(i + step) mod slots]; no level.
DeviceCiphertext rotate(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a, long step);
// Many rotations sharing one decomposition (hoisting); no level.
std::vector<DeviceCiphertext> rotate_hoisted(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a,
                                             const std::vector<long>& steps);
DeviceCiphertext conjugate(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a);  // no level

}  // namespace resident
}  // namespace ht
