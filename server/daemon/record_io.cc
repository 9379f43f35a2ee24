#include "daemon/record_io.h"

#include <zlib.h>

#include <cstring>

namespace dogpiled::daemon {
namespace {

template <typename T>
void Put(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // x86/arm64 are little-endian
  out.append(bytes, sizeof(T));
}

void PutString(std::string& out, const std::string& s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out += s;
}

std::string Frame(const std::string& payload) {
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

 private:
  std::string_view data_;
  size_t pos_ = 0;
  bool bad_ = false;
};

}  // namespace

std::string EncodeValue(const core::PersistedValue& v) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kValue));
  PutString(p, v.registry);
  PutString(p, v.key);
  PutString(p, v.value.str());
  Put<double>(p, v.created_time);
  Put<uint64_t>(p, v.token);
  return Frame(p);
}

std::string EncodeDrop(const std::string& registry, const std::string& key) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kDrop));
  PutString(p, registry);
  PutString(p, key);
  return Frame(p);
}

std::string EncodeInvalidation(const core::PersistedInvalidation& inv) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kInvalidation));
  PutString(p, inv.registry);
  PutString(p, inv.key);
  Put<uint8_t>(p, inv.hard ? 1 : 0);
  Put<uint64_t>(p, inv.mark);
  Put<double>(p, inv.wall);
  return Frame(p);
}

std::optional<Record> RecordReader::DecodeAt(size_t pos, size_t& end) const {
  if (data_.size() < 8 || pos > data_.size() - 8) {
    return std::nullopt;
  }
  uint32_t length = 0;
  uint32_t crc = 0;
  std::memcpy(&length, data_.data() + pos, 4);
  std::memcpy(&crc, data_.data() + pos + 4, 4);
  if (length > data_.size() - pos - 8) {
    return std::nullopt;  // torn, or not a record start
  }
  const std::string_view payload = data_.substr(pos + 8, length);
  if (crc32(0, reinterpret_cast<const Bytef*>(payload.data()),
            static_cast<uInt>(payload.size())) != crc) {
    return std::nullopt;
  }
  Cursor in(payload);
  Record r;
  r.type = static_cast<RecordType>(in.Get<uint8_t>());
  switch (r.type) {
    case RecordType::kValue:
      r.value.registry = in.GetString();
      r.value.key = in.GetString();
      r.value.value = in.GetString();
      r.value.created_time = in.Get<double>();
      r.value.token = in.Get<uint64_t>();
      break;
    case RecordType::kDrop:
      r.value.registry = in.GetString();
      r.value.key = in.GetString();
      break;
    case RecordType::kInvalidation:
      r.invalidation.registry = in.GetString();
      r.invalidation.key = in.GetString();
      r.invalidation.hard = in.Get<uint8_t>() != 0;
      r.invalidation.mark = in.Get<uint64_t>();
      r.invalidation.wall = in.Get<double>();
      break;
    default:
      return std::nullopt;
  }
  if (!in.ok()) {
    return std::nullopt;
  }
  end = pos + 8 + length;
  return r;
}

std::optional<Record> RecordReader::Next() {
  size_t end = 0;
  std::optional<Record> r = DecodeAt(pos_, end);
  if (r) {
    pos_ = end;
  }
  return r;
}

bool RecordReader::Resync() {
  size_t end = 0;
  for (size_t p = pos_ + 1; data_.size() >= 8 && p <= data_.size() - 8; ++p) {
    if (DecodeAt(p, end)) {
      pos_ = p;
      return true;
    }
  }
  return false;
}

}  // namespace dogpiled::daemon
