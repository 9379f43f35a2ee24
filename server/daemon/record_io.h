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

// Reads records from a whole file's bytes. Next() stops at a torn or
// corrupt record; Resync() then finds the next whole, valid record after
// it (its length and CRC check out), if there is one.
class RecordReader {
 public:
  explicit RecordReader(std::string_view data) : data_(data) {}
  std::optional<Record> Next();
  bool Resync();
  bool at_end() const { return pos_ == data_.size(); }
  size_t consumed() const { return pos_; }

 private:
  std::optional<Record> DecodeAt(size_t pos, size_t& end) const;

  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace dogpiled::daemon
