// Turns fuzzer bytes into choices. Running out of bytes yields zeros, so
// every input is a valid program.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dogpiled::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Byte() % n; }
  int64_t Int64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      v = (v << 8) | Byte();
    }
    return static_cast<int64_t>(v);
  }
  double Double() {
    const int64_t bits = Int64();
    double d;
    static_assert(sizeof(d) == sizeof(bits));
    __builtin_memcpy(&d, &bits, sizeof(d));
    return d;
  }
  std::string String(size_t max) {
    const size_t n = Below(max + 1);
    std::string s;
    for (size_t i = 0; i < n; ++i) {
      s += static_cast<char>(Byte());
    }
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace dogpiled::fuzz
