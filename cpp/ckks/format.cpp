#include "ckks/format.hpp"

namespace ht::format {

namespace {
constexpr char kMagic[8] = {'H', 'E', 'T', 'E', 'N', 'S', 'O', 'R'};
inline u64 rotl(u64 x, int r) { return (x << r) | (x >> (64 - r)); }
}  // namespace

u64 checksum(const u8* data, size_t len) {
  // Per word: h = rotl(h ^ w * k1, 31) * k2 is a bijection of w for fixed h,
  // and every later step is a bijection of h, so one changed word always
  // changes the result.
  const u64 k1 = 0x9e3779b185ebca87ull, k2 = 0xc2b2ae3d27d4eb4full;
  u64 h = 0x27d4eb2f165667c5ull ^ len;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    u64 w;
    std::memcpy(&w, data + i, 8);
    h = rotl(h ^ (w * k1), 31) * k2;
  }
  u64 tail = 0;
  std::memcpy(&tail, data + i, len - i);
  h = rotl(h ^ (tail * k1), 31) * k2;
  h ^= h >> 29;
  return h * k1;
}

const char* type_name(Type t) {
  switch (t) {
    case Type::kParams: return "parameters";
    case Type::kContext: return "context";
    case Type::kCiphertext: return "ciphertext";
    case Type::kPlaintext: return "plaintext";
    case Type::kBlob: return "object";
  }
  return "unknown";
}

void write_header(u8* out, Header h, const u8* payload, size_t payload_len) {
  h.payload_len = payload_len;
  h.checksum = checksum(payload, payload_len);
  Writer w(out);
  w.bytes(kMagic, 8);
  w.put<u16>(h.version);
  w.put<u16>(static_cast<u16>(h.type));
  w.put<u32>(h.flags);
  w.put<u64>(h.param_hash);
  w.put<u64>(h.key_id);
  w.put<u64>(h.payload_len);
  w.put<u64>(h.checksum);
}

std::string Reader::str(size_t max_len, const char* what) {
  const u32 n = get<u32>(what);
  if (n > max_len)
    throw FormatError(std::string(what) + " is " + std::to_string(n) + " bytes long; at most " +
                      std::to_string(max_len) + " are allowed");
  const u8* p = take(n, what);
  return std::string(reinterpret_cast<const char*>(p), n);
}

void check_version(u16 version) {
  if (version == 1)
    throw FormatError("format version 1 (an earlier hetensor: its seeds expand with ChaCha20, keys carry no level) "
                      "is not supported; this hetensor reads version " + std::to_string(kVersion) +
                      ": save the object again with the hetensor that made it, unseeded, or remake it");
  if (version != kVersion)
    throw FormatError("format version " + std::to_string(version) + " is not supported (this hetensor reads " +
                      std::to_string(kVersion) + ")");
}

Header read_header(const u8* data, size_t len, bool verify_checksum) {
  if (len < kHeaderBytes)
    throw FormatError("not a hetensor object: " + std::to_string(len) + " bytes is shorter than the " +
                      std::to_string(kHeaderBytes) + "-byte header");
  if (std::memcmp(data, kMagic, 8) != 0) throw FormatError("not a hetensor object (bad magic bytes)");
  Reader r(data + 8, kHeaderBytes - 8);
  Header h;
  h.version = r.get<u16>("version");
  const u16 type = r.get<u16>("type");
  h.flags = r.get<u32>("flags");
  h.param_hash = r.get<u64>("parameter hash");
  h.key_id = r.get<u64>("key id");
  h.payload_len = r.get<u64>("payload length");
  h.checksum = r.get<u64>("checksum");
  check_version(h.version);
  if (type < 1 || type > 5) throw FormatError("unknown object type " + std::to_string(type));
  h.type = static_cast<Type>(type);
  if ((h.flags & ~kFlagSeeded) != 0) throw FormatError("unknown flags " + std::to_string(h.flags));
  if (h.payload_len != len - kHeaderBytes)
    throw FormatError("the header announces " + std::to_string(h.payload_len) + " bytes of payload but " +
                      std::to_string(len - kHeaderBytes) + " follow (truncated or corrupt data)");
  if (verify_checksum && checksum(data + kHeaderBytes, len - kHeaderBytes) != h.checksum)
    throw FormatError("checksum mismatch: the data is corrupt");
  return h;
}

}  // namespace ht::format
