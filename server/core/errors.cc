#include "core/errors.h"

namespace dogpiled::core {

Status FieldInvalid(std::string_view field, std::string_view what) {
  return InvalidArgument(std::string(field) + ": " + std::string(what))
      .WithReason(std::string(reason::kFieldInvalid),
                  {{std::string(kFieldKey), std::string(field)}});
}

Status FieldInvalid(std::string_view field, std::string_view what,
                    uint64_t limit) {
  return InvalidArgument(std::string(field) + ": " + std::string(what))
      .WithReason(std::string(reason::kFieldInvalid),
                  {{std::string(kFieldKey), std::string(field)},
                   {std::string(kLimitKey), std::to_string(limit)}});
}

Status CapReached(std::string_view reason, std::string_view field,
                  uint64_t limit, std::string message) {
  return ResourceExhausted(std::move(message))
      .WithReason(std::string(reason),
                  {{std::string(kFieldKey), std::string(field)},
                   {std::string(kLimitKey), std::to_string(limit)},
                   {std::string(kRetryDelayMs),
                    std::to_string(kCapRetryDelayMs)}});
}

Status ShuttingDown() {
  return Unavailable("dogpiled is shutting down")
      .WithReason(std::string(reason::kShuttingDown));
}

Status SessionNotFound(uint64_t session_id, std::string_view what) {
  return NotFound("session_id: " + std::string(what))
      .WithReason(std::string(reason::kSessionNotFound),
                  {{std::string(kFieldKey), "session_id"},
                   {"session_id", std::to_string(session_id)}});
}

Status SessionNotFound(uint64_t session_id) {
  return SessionNotFound(session_id, "unknown or ended session " +
                                         std::to_string(session_id));
}

Status NotHolder(uint64_t token, std::string message) {
  return FailedPrecondition(std::move(message))
      .WithReason(std::string(reason::kNotHolder),
                  {{std::string(kFieldKey), "token"},
                   {"token", std::to_string(token)}});
}

}  // namespace dogpiled::core
