// The byte layout shared by the record reader and writer (record_io.cc)
// and the snapshot encoding (snapshot_io.cc): little-endian fields, strings
// with a u32 length, and each record framed as [u32 length][u32 crc32].
// Internal to the daemon's storage code.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/journal.h"

namespace dogpiled::daemon {

template <typename T>
inline void Put(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // x86/arm64 are little-endian
  out.append(bytes, sizeof(T));
}

inline void PutString(std::string& out, const std::string& s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out += s;
}

inline std::string Frame(const std::string& payload) {
  std::string out;
  Put<uint32_t>(out, static_cast<uint32_t>(payload.size()));
  Put<uint32_t>(out, static_cast<uint32_t>(crc32(
                         0, reinterpret_cast<const Bytef*>(payload.data()),
                         static_cast<uInt>(payload.size()))));
  return out + payload;
}

// Reads fields from one payload; any overrun marks it bad.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}
  template <typename T>
  T Get() {
    T v{};
    if (pos_ + sizeof(T) > data_.size()) {
      bad_ = true;
      return v;
    }
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string GetString() {
    const auto n = Get<uint32_t>();
    if (bad_ || pos_ + n > data_.size()) {
      bad_ = true;
      return {};
    }
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool ok() const { return !bad_ && pos_ == data_.size(); }
  bool at_end() const { return pos_ >= data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  bool bad_ = false;
};

// libraft's on-disk log takes only entries whose size is a multiple of 8, so
// entries end in up to 7 zero bytes; no record is shorter than its 8-byte
// header, so they cannot be taken for one.
inline bool IsPadding(std::string_view rest) {
  return rest.size() < 8 &&
         rest.find_first_not_of('\0') == std::string_view::npos;
}

inline void PutKind(std::string& out, core::GrantKind kind) {
  Put<uint8_t>(out, static_cast<uint8_t>(kind));
}

// False (the record is bad) for a byte that names no kind.
inline bool GetKind(Cursor& in, core::GrantKind& kind) {
  const auto byte = in.Get<uint8_t>();
  kind = static_cast<core::GrantKind>(byte);
  return byte >= 1 && byte <= 3;
}

}  // namespace dogpiled::daemon
