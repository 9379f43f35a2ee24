#include "core/validation.h"

#include <cmath>
#include <string>
#include <utility>

#include "core/errors.h"

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
    return FieldInvalid("registry", "must not be empty");
  }
  if (registry.size() > kMaxRegistryChars) {
    return FieldInvalid("registry",
                        "longer than " + std::to_string(kMaxRegistryChars) +
                            " characters",
                        kMaxRegistryChars);
  }
  for (char c : registry) {
    if (!IsRegistryChar(c)) {
      return FieldInvalid("registry",
                          "only A-Z a-z 0-9 . _ : - are allowed");
    }
  }
  return {};
}

Status CheckKey(std::string_view key, const Limits& limits) {
  if (key.empty()) {
    return FieldInvalid("key", "must not be empty");
  }
  return CheckKeyOrEmpty(key, limits);
}

Status CheckKeyOrEmpty(std::string_view key, const Limits& limits) {
  if (key.size() > limits.max_key_bytes) {
    return FieldInvalid("key",
                        "longer than " +
                            std::to_string(limits.max_key_bytes) + " bytes",
                        limits.max_key_bytes);
  }
  return {};
}

Status CheckNonNegative(int64_t value, std::string_view field) {
  if (value < 0) {
    return FieldInvalid(field, "must not be negative");
  }
  return {};
}

Status CheckFinite(double value, std::string_view field) {
  if (!std::isfinite(value)) {
    return FieldInvalid(field, "must be a finite number");
  }
  return {};
}

Status CheckMaxBytes(std::string_view text, uint64_t max,
                     std::string_view field) {
  if (text.size() > max) {
    return FieldInvalid(field,
                        "longer than " + std::to_string(max) + " bytes", max);
  }
  return {};
}

Status LimitReached(std::string message, std::string_view reason,
                    std::string_view field, uint64_t limit) {
  return CapReached(reason, field, limit, std::move(message));
}

Status CheckNames(const std::string& registry, const std::string& key,
                  const Limits& limits) {
  if (Status s = CheckRegistry(registry); !s.ok()) {
    return s;
  }
  return CheckKey(key, limits);
}

Status CheckTimeout(int64_t value, const char* field, const Limits& limits) {
  if (Status s = CheckNonNegative(value, field); !s.ok()) {
    return s;
  }
  if (value > limits.max_timeout_ms) {
    return FieldInvalid(field,
                        "must be at most " +
                            std::to_string(limits.max_timeout_ms),
                        limits.max_timeout_ms);
  }
  return {};
}

Status CheckNotFuture(double time, const char* field, const Limits& limits,
                      double now) {
  if (Status s = CheckFinite(time, field); !s.ok()) {
    return s;
  }
  const double skew = static_cast<double>(limits.max_future_skew_ms) / 1000.0;
  if (time > now + skew) {
    return InvalidArgument(std::string(field) + ": " +
                           std::to_string(time - now) +
                           " s ahead of the daemon's clock, more than the " +
                           "allowed skew of " +
                           std::to_string(limits.max_future_skew_ms) + " ms")
        .WithReason(std::string(reason::kTimeInFuture),
                    {{"field", field},
                     {"limit", std::to_string(limits.max_future_skew_ms)}});
  }
  return {};
}

}  // namespace dogpiled::core
