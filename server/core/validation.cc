#include "core/validation.h"

#include <cmath>
#include <string>
#include <utility>

namespace dogpiled::core {
namespace {

bool IsRegistryChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
         c == '-';
}

}  // namespace

Status CheckRegistry(std::string_view registry) {
  if (registry.empty()) {
    return InvalidArgument("registry: must not be empty");
  }
  if (registry.size() > kMaxRegistryChars) {
    return InvalidArgument("registry: longer than " +
                           std::to_string(kMaxRegistryChars) + " characters");
  }
  for (char c : registry) {
    if (!IsRegistryChar(c)) {
      return InvalidArgument(
          "registry: only A-Z a-z 0-9 . _ : - are allowed");
    }
  }
  return {};
}

Status CheckKey(std::string_view key, const Limits& limits) {
  if (key.empty()) {
    return InvalidArgument("key: must not be empty");
  }
  return CheckKeyOrEmpty(key, limits);
}

Status CheckKeyOrEmpty(std::string_view key, const Limits& limits) {
  if (key.size() > limits.max_key_bytes) {
    return InvalidArgument("key: longer than " +
                           std::to_string(limits.max_key_bytes) + " bytes");
  }
  return {};
}

Status CheckNonNegative(int64_t value, std::string_view field) {
  if (value < 0) {
    return InvalidArgument(std::string(field) + ": must not be negative");
  }
  return {};
}

Status CheckFinite(double value, std::string_view field) {
  if (!std::isfinite(value)) {
    return InvalidArgument(std::string(field) + ": must be a finite number");
  }
  return {};
}

Status CheckMaxBytes(std::string_view text, uint64_t max,
                     std::string_view field) {
  if (text.size() > max) {
    return InvalidArgument(std::string(field) + ": longer than " +
                           std::to_string(max) + " bytes");
  }
  return {};
}

Status LimitReached(std::string message, std::string reason,
                    std::string field, uint64_t limit) {
  return ResourceExhausted(std::move(message))
      .WithReason(std::move(reason),
                  {{"field", std::move(field)},
                   {"limit", std::to_string(limit)}});
}

}  // namespace dogpiled::core
