// The on-disk record format of the value journal: each record is
// [u32 length][u32 crc32 of payload][payload], little-endian, so a torn
// write at the tail of a log (a crash mid-append) is detected and ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/journal.h"

namespace dogpiled::daemon {

enum class RecordType : uint8_t { kValue = 1, kDrop = 2, kInvalidation = 3 };

// One decoded record.
struct Record {
  RecordType type = RecordType::kValue;
  core::PersistedValue value;               // kValue; registry/key for kDrop
  core::PersistedInvalidation invalidation;  // kInvalidation
};

std::string EncodeValue(const core::PersistedValue& value);
std::string EncodeDrop(const std::string& registry, const std::string& key);
std::string EncodeInvalidation(const core::PersistedInvalidation& inv);

// Reads records from a whole file's bytes, stopping at the first torn or
// corrupt one. `consumed` is how many bytes were good.
class RecordReader {
 public:
  explicit RecordReader(std::string_view data) : data_(data) {}
  std::optional<Record> Next();
  size_t consumed() const { return pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace dogpiled::daemon
