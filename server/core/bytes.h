// An immutable byte string shared by reference. A stored value, every answer
// that carries it, every parked waiter it wakes and the journal's snapshot
// all point at one copy, so nothing copies value bytes under the core's lock.
#pragma once

#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace dogpiled::core {

class Bytes {
 public:
  Bytes() = default;
  Bytes(std::string s)  // NOLINT: implicit, a value is made from its bytes
      : p_(std::make_shared<const std::string>(std::move(s))) {}
  Bytes(const char* s) : Bytes(std::string(s)) {}  // NOLINT: as above

  const std::string& str() const { return p_ ? *p_ : Empty(); }
  size_t size() const { return p_ ? p_->size() : 0; }
  bool empty() const { return size() == 0; }
  void clear() { p_.reset(); }
  // Another holder of the same bytes (tests check that nothing was copied).
  bool SharesWith(const Bytes& other) const { return p_ && p_ == other.p_; }

  friend bool operator==(const Bytes& a, std::string_view b) {
    return a.str() == b;
  }
  friend bool operator==(const Bytes& a, const char* b) {
    return a.str() == b;
  }
  friend bool operator==(const Bytes& a, const std::string& b) {
    return a.str() == b;
  }
  friend std::ostream& operator<<(std::ostream& out, const Bytes& b) {
    return out << b.str();
  }

 private:
  static const std::string& Empty() {
    static const std::string empty;
    return empty;
  }
  std::shared_ptr<const std::string> p_;
};

}  // namespace dogpiled::core
