#include "linalg/batch.hpp"

#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "runtime/parallel.hpp"

namespace ht::linalg {

namespace {
template <class Ct>
void check_items(const Tables& ctx, const std::vector<std::pair<const Ct*, int>>& items) {
  const char* op = "regroup ciphertexts";
  if (items.empty()) fail(op, "no ciphertexts given");
  const Ct& f = *items.front().first;
  for (auto& it : items) {
    const Ct& c = *it.first;
    if (c.context_id != ctx.id()) fail(op, "a ciphertext belongs to another context");
    if (it.second < 0 || it.second >= c.batch) fail(op, "ciphertext index out of range");
    if (c.level != f.level || c.size != f.size) fail(op, "ciphertexts differ in level or size; bring them to one level first");
    if (std::fabs(c.scale / f.scale - 1.0) > 1e-9) fail(op, "ciphertexts differ in scale");
  }
}

// The items `idx` of one batch, as assemble's list.
template <class Ct>
std::vector<std::pair<const Ct*, int>> items_of(const Ct& ct, const std::vector<int>& idx) {
  std::vector<std::pair<const Ct*, int>> items;
  for (int i : idx) items.push_back({&ct, i});
  return items;
}
}  // namespace

Ciphertext gather(const Tables& ctx, const Ciphertext& ct, const std::vector<int>& idx) {
  return assemble(ctx, items_of(ct, idx));
}

Ciphertext assemble(const Tables& ctx, const std::vector<std::pair<const Ciphertext*, int>>& items) {
  check_items(ctx, items);
  const Ciphertext& f = *items.front().first;
  Ciphertext out(ctx.n(), static_cast<int>(items.size()), f.size, f.level, f.scale, ctx.id(), false, false);
  const size_t words = static_cast<size_t>(f.size) * f.limbs() * ctx.n();
  double bound = 0;
  for (auto& it : items) bound = std::max(bound, it.first->bound);
  parallel_for(items.size(), [&](size_t k) {
    std::memcpy(out.poly(static_cast<int>(k), 0), items[k].first->poly(items[k].second, 0), words * sizeof(u64));
  });
  out.bound = bound;
  return out;
}

DeviceCiphertext gather(const Tables& ctx, const DeviceCiphertext& ct, const std::vector<int>& idx) {
  return assemble(ctx, items_of(ct, idx));
}

DeviceCiphertext assemble(const Tables& ctx, const std::vector<std::pair<const DeviceCiphertext*, int>>& items) {
  check_items(ctx, items);
  const DeviceCiphertext& f = *items.front().first;
  backend::Backend& be = f.backend();
  for (auto& it : items)
    if (it.first->data.owner() != &be)
      fail("regroup ciphertexts", "the ciphertexts live on different devices; move them to one with .to(device)");
  DeviceCiphertext out = resident::make_batch(ctx, be, static_cast<int>(items.size()), f.size, f.level, f.scale, false);
  const size_t words = static_cast<size_t>(f.size) * f.limbs() * ctx.n();
  double bound = 0;
  for (size_t k = 0; k < items.size(); ++k) {
    be.copy(out.poly(static_cast<int>(k), 0), items[k].first->poly(items[k].second, 0), words);
    bound = std::max(bound, items[k].first->bound);
  }
  out.bound = bound;
  return out;
}

Ciphertext zeros_like(const Tables& ctx, const Ciphertext& like, int count) {
  Ciphertext out(ctx.n(), count, 2, like.level, like.scale, ctx.id());
  return out;
}

}  // namespace ht::linalg
