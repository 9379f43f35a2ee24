// The stable causes of refused calls (google.rpc.ErrorInfo's reason), and
// builders for the errors that many core entry points share.
//
// DOGPILED_ERROR_REASONS is the one list in C++. The proto lists the same
// names as enum dogpiled.v1.ErrorReason, so other languages have them; a
// service test checks the two agree, value for value. Metadata keys: "field"
// names the request field at fault, "limit" the bound that was hit,
// "released" marks a NOT_HOLDER for a release already made, and
// kRetryDelayMs (never shown to clients as metadata) becomes
// google.rpc.RetryInfo.
//
// Thread-safety: constants and pure functions only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

#define DOGPILED_ERROR_REASONS(X)                \
  X(kFieldInvalid, "FIELD_INVALID")              \
  X(kValueTooLarge, "VALUE_TOO_LARGE")           \
  X(kSessionNotFound, "SESSION_NOT_FOUND")       \
  X(kNotHolder, "NOT_HOLDER")                    \
  X(kSessionNotOwned, "SESSION_NOT_OWNED")       \
  X(kSessionsLimit, "SESSIONS_LIMIT")            \
  X(kSessionsPerClient, "SESSIONS_PER_CLIENT")   \
  X(kWaitersTotal, "WAITERS_TOTAL")              \
  X(kWaitersPerKey, "WAITERS_PER_KEY")           \
  X(kMemoryBudget, "MEMORY_BUDGET")              \
  X(kWaitTimeout, "WAIT_TIMEOUT")                \
  X(kCallerCancelled, "CALLER_CANCELLED")        \
  X(kShuttingDown, "SHUTTING_DOWN")              \
  X(kStorageFailed, "STORAGE_FAILED")            \
  X(kNotLeader, "NOT_LEADER")                    \
  X(kTokenMissing, "TOKEN_MISSING")              \
  X(kTokenRefused, "TOKEN_REFUSED")              \
  X(kKeepAliveBroken, "KEEPALIVE_BROKEN")       \
  X(kTokensNotDurable, "TOKENS_NOT_DURABLE")     \
  X(kReplacedByRetry, "REPLACED_BY_RETRY")      \
  X(kTenantSessionsQuota, "TENANT_SESSIONS_QUOTA") \
  X(kTenantWaitersQuota, "TENANT_WAITERS_QUOTA") \
  X(kTenantGrantsQuota, "TENANT_GRANTS_QUOTA")   \
  X(kTenantMemoryQuota, "TENANT_MEMORY_QUOTA")   \
  X(kSessionGrantsCap, "SESSION_GRANTS_CAP")     \
  X(kTimeInFuture, "TIME_IN_FUTURE")             \
  X(kResponseBytesInFlight, "RESPONSE_BYTES_IN_FLIGHT") \
  X(kCertificateWithoutIdentity, "CERTIFICATE_WITHOUT_IDENTITY") \
  X(kWatchReplaced, "WATCH_REPLACED")           \
  X(kNotReplicated, "NOT_REPLICATED")             \
  X(kMemberExists, "MEMBER_EXISTS")               \
  X(kChangeInProgress, "CHANGE_IN_PROGRESS")      \
  X(kMemberUnreachable, "MEMBER_UNREACHABLE")     \
  X(kNotAMember, "NOT_A_MEMBER")                  \
  X(kLastVoter, "LAST_VOTER")

namespace dogpiled::core {

namespace reason {
#define DOGPILED_REASON_CONSTANT(name, text) \
  inline constexpr std::string_view name = text;
DOGPILED_ERROR_REASONS(DOGPILED_REASON_CONSTANT)
#undef DOGPILED_REASON_CONSTANT

#define DOGPILED_REASON_ENTRY(name, text) text,
inline constexpr std::array kAll = {
    DOGPILED_ERROR_REASONS(DOGPILED_REASON_ENTRY)};
#undef DOGPILED_REASON_ENTRY
}  // namespace reason

// Metadata keys.
inline constexpr std::string_view kFieldKey = "field";
inline constexpr std::string_view kLimitKey = "limit";
// On NOT_HOLDER, "true": this session's own earlier Unlock or Abandon of
// that token released it (the SDKs count the refusal as released).
inline constexpr std::string_view kReleasedKey = "released";
// Carried as metadata inside the core; the service layer turns it into
// google.rpc.RetryInfo.
inline constexpr std::string_view kRetryDelayMs = "retry_delay_ms";
// What a cap suggests: try again after about this long.
inline constexpr int64_t kCapRetryDelayMs = 1000;

// "field: <what>", INVALID_ARGUMENT, FIELD_INVALID naming the field (and
// the limit, if one was crossed).
Status FieldInvalid(std::string_view field, std::string_view what);
Status FieldInvalid(std::string_view field, std::string_view what,
                    uint64_t limit);
// RESOURCE_EXHAUSTED for a cap, with a retry delay.
Status CapReached(std::string_view reason, std::string_view field,
                  uint64_t limit, std::string message);
// UNAVAILABLE, SHUTTING_DOWN.
Status ShuttingDown();
// NOT_FOUND, SESSION_NOT_FOUND; `what` follows "session_id: ".
Status SessionNotFound(uint64_t session_id, std::string_view what);
Status SessionNotFound(uint64_t session_id);
// FAILED_PRECONDITION, NOT_HOLDER; `message` is the whole text.
Status NotHolder(uint64_t token, std::string message);
// The same NOT_HOLDER for a repeat of this session's own `call` ("Unlock"
// or "Abandon") of `token`, which already released it, with "released" =
// "true" in its metadata.
Status AlreadyReleased(uint64_t token, std::string_view call);
// Whether `status` is such a NOT_HOLDER (its metadata says "released").
bool MarkedReleased(const Status& status);

}  // namespace dogpiled::core
