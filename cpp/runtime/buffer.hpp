// Buffer: an owner of 64-byte-aligned host memory of uint64 words, from the
// pool of runtime/allocator. Every polynomial, plaintext, ciphertext batch and
// key is one Buffer, laid out limb-major and contiguous. `secure` buffers are
// zeroed before they go back to the pool. Buffer::uninitialized skips the
// zero fill for outputs that are overwritten in full.
#pragma once
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "core/defs.hpp"
#include "runtime/allocator.hpp"

namespace ht {

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t words, bool secure = false, bool zero = true) : size_(words), secure_(secure) {
    if (words == 0) return;
    data_ = static_cast<u64*>(pool_allocate(words * sizeof(u64)));
    if (zero) std::memset(data_, 0, words * sizeof(u64));
  }
  static Buffer uninitialized(std::size_t words) { return Buffer(words, false, false); }
  Buffer(const Buffer& o) : Buffer(o.size_, o.secure_, false) {
    if (size_) std::memcpy(data_, o.data_, size_ * sizeof(u64));
  }
  Buffer& operator=(const Buffer& o) {
    if (this != &o) { Buffer t(o); swap(t); }
    return *this;
  }
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept { Buffer t(std::move(o)); swap(t); return *this; }
  ~Buffer() { release(); }

  void swap(Buffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(secure_, o.secure_);
  }
  u64* data() { return data_; }
  const u64* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return size_ * sizeof(u64); }

 private:
  void release() {
    if (!data_) return;
    if (secure_) {
      // volatile stores so the compiler cannot drop the wipe of secret data.
      volatile u64* p = data_;
      for (std::size_t i = 0; i < size_; ++i) p[i] = 0;
    }
    pool_free(data_, size_ * sizeof(u64));
    data_ = nullptr;
    size_ = 0;
  }
  u64* data_ = nullptr;
  std::size_t size_ = 0;
  bool secure_ = false;
};

}  // namespace ht
