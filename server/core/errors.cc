#include "core/errors.h"

#include <algorithm>

namespace dogpiled::core {
namespace {

Status MakeNotHolder(uint64_t token, std::string message, bool released) {
  Status::Metadata metadata = {{std::string(kFieldKey), "token"},
                               {"token", std::to_string(token)}};
  if (released) {
    metadata.emplace_back(std::string(kReleasedKey), "true");
  }
  return FailedPrecondition(std::move(message))
      .WithReason(std::string(reason::kNotHolder), std::move(metadata));
}

}  // namespace

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
  return MakeNotHolder(token, std::move(message), /*released=*/false);
}

Status AlreadyReleased(uint64_t token, std::string_view call) {
  return MakeNotHolder(token,
                       "token: this session's own earlier " +
                           std::string(call) + " of token " +
                           std::to_string(token) +
                           " already released it; nothing changed",
                       /*released=*/true);
}

bool MarkedReleased(const Status& status) {
  return std::any_of(status.metadata().begin(), status.metadata().end(),
                     [](const auto& entry) {
                       return entry.first == kReleasedKey &&
                              entry.second == "true";
                     });
}

}  // namespace dogpiled::core
