// The byte layer of hetensor's binary format (serialize.hpp builds objects on
// it): a 48-byte header, little-endian fields, a checksum of the payload.
//   magic "HETENSOR" | u16 version | u16 type | u32 flags | u64 param_hash
//   | u64 key_id | u64 payload_len | u64 checksum
// Reader checks every length against the bytes left before it is used, so a
// hostile length fails with FormatError instead of allocating.
#pragma once
#include <cstring>
#include <string>

#include "core/defs.hpp"
#include "core/error.hpp"

namespace ht::format {

using u8 = std::uint8_t;
using u16 = std::uint16_t;
using i32 = std::int32_t;

// 2: seeds expand with AES-256-CTR per limb (core/aes.hpp); switching keys
// carry their level and may be compact (seeds kept in memory).
constexpr u16 kVersion = 2;
constexpr size_t kHeaderBytes = 48;

enum class Type : u16 {
  kParams = 1,
  kContext = 2,      // parameters and keys: evaluation keys, optionally the secret key
  kCiphertext = 3,   // a batch of ciphertexts (a CipherTensor)
  kPlaintext = 4,    // a batch of encoded plaintexts (a PlainTensor)
  kBlob = 5,         // a payload defined by the Python layer (PlainMatrix)
};
constexpr u32 kFlagSeeded = 1;   // some uniform polynomials are stored as seeds

struct Header {
  u16 version = kVersion;
  Type type = Type::kParams;
  u32 flags = 0;
  u64 param_hash = 0;
  u64 key_id = 0;
  u64 payload_len = 0;
  u64 checksum = 0;
};

// Detects corruption (every single-word change alters it); it is not a MAC.
u64 checksum(const u8* data, size_t len);

// Counts bytes when `out` is null, so a caller sizes the buffer first.
class Writer {
 public:
  explicit Writer(u8* out = nullptr) : out_(out) {}
  void bytes(const void* p, size_t len) {
    if (out_) std::memcpy(out_ + pos_, p, len);
    pos_ += len;
  }
  template <class T>
  void put(T v) { bytes(&v, sizeof(T)); }
  void str(const std::string& s) { put<u32>(static_cast<u32>(s.size())); bytes(s.data(), s.size()); }
  void words(const u64* p, size_t count) { bytes(p, count * sizeof(u64)); }
  size_t size() const { return pos_; }

 private:
  u8* out_;
  size_t pos_ = 0;
};

class Reader {
 public:
  Reader(const u8* data, size_t len) : data_(data), len_(len) {}
  size_t left() const { return len_ - pos_; }
  void need(size_t len, const char* what) const {
    if (len > left())
      throw FormatError(std::string("truncated or corrupt data: ") + what + " needs " + std::to_string(len) +
                        " bytes but " + std::to_string(left()) + " are left");
  }
  void bytes(void* p, size_t len, const char* what) {
    need(len, what);
    std::memcpy(p, data_ + pos_, len);
    pos_ += len;
  }
  template <class T>
  T get(const char* what) {
    T v;
    bytes(&v, sizeof(T), what);
    return v;
  }
  std::string str(size_t max_len, const char* what);
  const u8* take(size_t len, const char* what) {
    need(len, what);
    const u8* p = data_ + pos_;
    pos_ += len;
    return p;
  }
  void expect_end(const char* what) const {
    if (left() != 0) throw FormatError(std::string(what) + ": " + std::to_string(left()) + " unexpected trailing bytes");
  }

 private:
  const u8* data_;
  size_t len_;
  size_t pos_ = 0;
};

// Throws FormatError, saying why, unless this hetensor reads `version`.
void check_version(u16 version);
// Writes header + payload into `out` (header_bytes + payload.size() bytes).
void write_header(u8* out, Header h, const u8* payload, size_t payload_len);
// Parses and checks the header of a whole object: magic, version, length
// (equal to the bytes that follow) and, when verify_checksum, the checksum.
Header read_header(const u8* data, size_t len, bool verify_checksum);
const char* type_name(Type t);

}  // namespace ht::format
