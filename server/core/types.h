// Plain request and result types of the core API. They mirror the gRPC
// messages field by field, but carry no protobuf so the core stays
// transport-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "dogpiled/v1/stats_fields.inc"

namespace dogpiled::core {

using SessionId = uint64_t;
using Token = uint64_t;

struct OpenResult {
  SessionId session_id = 0;
  int64_t ttl_ms = 0;
};

struct AcquireRequest {
  std::string registry;
  std::string key;
  SessionId session_id = 0;
  int64_t expire_ms = 0;
  int64_t wait_timeout_ms = 0;
  int64_t creation_timeout_ms = 0;
  std::optional<double> client_created_time;  // present: lock-only mode
  double early_refresh_beta = 0;
  int64_t max_stale_ms = 0;
  // Idempotency key (0: none): a retry from the same session with the same
  // id gets the earlier call's grant or place in line.
  uint64_t request_id = 0;
  // Near-cache: register a FRESH value's key for the session's watch.
  bool near_cache = false;
};

enum class Outcome { kFresh = 1, kStale = 2, kCreate = 3, kNotReady = 4 };

struct AcquireResult {
  Outcome outcome = Outcome::kNotReady;
  bool has_value = false;
  Bytes value;
  double created_time = 0;
  bool is_expired = true;
  Token token = 0;
  int64_t creation_deadline_ms = 0;
  int64_t age_ms = 0;
  int64_t retry_in_ms = 0;
  // FRESH with a value: ms it stays fresh (-1: never expires).
  int64_t fresh_for_ms = 0;
  // The watch the key was registered under for near_cache (0: not).
  uint64_t near_cache_watch_id = 0;
};

struct PublishRequest {
  std::string registry;
  std::string key;
  SessionId session_id = 0;
  Token token = 0;
  Bytes value;
  std::optional<double> created_time;
};

struct AbandonRequest {
  std::string registry;
  std::string key;
  SessionId session_id = 0;
  Token token = 0;
  std::string reason;
  int64_t retry_after_ms = 0;
};

struct InvalidateRequest {
  std::string registry;
  std::string key;  // empty: the whole registry
  bool hard = false;
};

struct PeekResult {
  bool has_value = false;
  Bytes value;
  double created_time = 0;
  bool is_expired = true;
  bool creating = false;
  int64_t age_ms = 0;
};

enum class LockMode { kRead = 1, kWrite = 2 };

struct LockRequest {
  std::string registry;
  std::string key;
  SessionId session_id = 0;
  int mode = 0;  // LockMode, kept as int so unknown values can be refused
  int64_t wait_timeout_ms = 0;
  uint64_t request_id = 0;  // as AcquireRequest::request_id
};

struct LockResult {
  bool acquired = false;
  Token token = 0;
};

// The daemon's gauges and counters, one member per field of
// dogpiled.v1.StatsResponse (the one list of them), in its order.
struct Stats {
#define DOGPILED_STATS_MEMBER(name, number) uint64_t name = 0;
  DOGPILED_STATS_FIELDS(DOGPILED_STATS_MEMBER)
#undef DOGPILED_STATS_MEMBER
};

}  // namespace dogpiled::core
