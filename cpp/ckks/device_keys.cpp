// Switching keys in backend memory (KeyChain::device_key, and the sparse-
// secret key of bootstrapping, device_sparse_key): uploaded once per key and
// device and kept with the chain; copies of keys the chain no longer holds (a
// key replaced by a wider one) are dropped at the next upload.
#include <vector>

#include "ckks/keys.hpp"
#include "core/error.hpp"
#include "runtime/parallel.hpp"

namespace ht {

KeyView KeyChain::device_key(const std::shared_ptr<const SwitchKey>& key, backend::Backend& be) const {
  if (!key) fail("key switch", "no key");
  if (be.device().kind == backend::DeviceKind::cpu) return host_view(*key);
  std::lock_guard<std::mutex> lock(device_mutex_);
  const auto id = std::make_pair(static_cast<const backend::Backend*>(&be), key.get());
  auto it = device_keys_.find(id);
  if (it == device_keys_.end()) {
    for (auto e = device_keys_.begin(); e != device_keys_.end();)
      e = e->second.host.use_count() == 1 ? device_keys_.erase(e) : std::next(e);
    const SwitchKey& k = *key;
    const Tables& ctx = *ctx_;
    const size_t limb_words = k.n, limbs = static_cast<size_t>(k.limbs());
    const size_t words = static_cast<size_t>(k.digits) * 2 * limbs * limb_words;
    DeviceCopy copy{key, be.allocate(words)};
    if (!k.compact) {
      be.upload(copy.data.data(), k.data.data(), words);
    } else {
      // Expanded on the host one digit at a time (b_j as stored, a_j from its seed), then uploaded.
      std::vector<u64> half(limbs * limb_words);
      const int L = ctx.max_level();
      for (int j = 0; j < k.digits; ++j) {
        u64* dst = copy.data.data() + static_cast<size_t>(2 * j) * limbs * limb_words;
        be.upload(dst, k.b(j, 0), limbs * limb_words);
        parallel_for(limbs, [&](size_t l) {
          const int li = static_cast<int>(l);
          const int prime = li <= k.level ? li : L + 1 + (li - k.level - 1);
          k.expand_a(ctx, j, prime, half.data() + l * limb_words);
        });
        be.upload(dst + limbs * limb_words, half.data(), half.size());
      }
    }
    it = device_keys_.emplace(id, std::move(copy)).first;
  }
  return KeyView{it->second.host.get(), it->second.data.data(), false};
}

const u64* KeyChain::device_sparse_key(backend::Backend& be) const {
  const std::shared_ptr<const EncapsulationKeys> enc = encapsulation();
  if (!enc) fail("switch to the sparse secret", "no encapsulation keys; create the context with bootstrap=True");
  if (be.device().kind == backend::DeviceKind::cpu) return enc->to_sparse.data();
  std::lock_guard<std::mutex> lock(device_mutex_);
  const auto id = std::make_pair(static_cast<const backend::Backend*>(&be), enc.get());
  auto it = device_sparse_.find(id);
  if (it == device_sparse_.end()) {
    const size_t words = enc->to_sparse.size();
    SparseCopy copy{enc, be.allocate(words)};
    be.upload(copy.data.data(), enc->to_sparse.data(), words);
    it = device_sparse_.emplace(id, std::move(copy)).first;
  }
  return it->second.data.data();
}

size_t KeyChain::device_key_bytes() const {
  std::lock_guard<std::mutex> lock(device_mutex_);
  size_t total = 0;
  for (const auto& e : device_keys_) total += e.second.data.size() * sizeof(u64);
  for (const auto& e : device_sparse_) total += e.second.data.size() * sizeof(u64);
  return total;
}

}  // namespace ht
