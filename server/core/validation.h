// Field checks shared by every core entry point (semantics.md section 4).
// Each returns INVALID_ARGUMENT (or RESOURCE_EXHAUSTED for sizes) with a
// message that names the field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/limits.h"
#include "core/status.h"

namespace dogpiled::core {

Status CheckRegistry(std::string_view registry);
Status CheckKey(std::string_view key, const Limits& limits);
// An optional key: empty is allowed (whole registry).
Status CheckKeyOrEmpty(std::string_view key, const Limits& limits);
Status CheckNonNegative(int64_t value, std::string_view field);
Status CheckFinite(double value, std::string_view field);
Status CheckMaxBytes(std::string_view text, uint64_t max,
                     std::string_view field);
Status CheckNames(const std::string& registry, const std::string& key,
                  const Limits& limits);
// 0 .. max_timeout_ms.
Status CheckTimeout(int64_t value, const char* field, const Limits& limits);
// A time far in the future would keep a value FRESH for ever (and across
// restarts): refuse what no honest clock skew explains.
Status CheckNotFuture(double time, const char* field, const Limits& limits,
                      double now);

// RESOURCE_EXHAUSTED for a cap or quota: `message` (which starts with the
// field), and the reason with the field and the limit as metadata.
Status LimitReached(std::string message, std::string_view reason,
                    std::string_view field, uint64_t limit);

}  // namespace dogpiled::core
