// Every limit and default of the contract (semantics.md section 4), in one
// place. The daemon fills it from flags, environment and config file.
#pragma once

#include <cstdint>

namespace dogpiled::core {

struct Limits {
  int64_t default_ttl_ms = 10'000;
  int64_t min_ttl_ms = 100;
  int64_t max_ttl_ms = 3'600'000;
  int64_t default_creation_timeout_ms = 30'000;
  // Longest creation_timeout_ms or wait_timeout_ms a caller may ask for.
  int64_t max_timeout_ms = 24LL * 3'600'000;
  int64_t invalidation_horizon_ms = 3'600'000;
  uint64_t max_key_bytes = 1024;
  uint64_t max_value_bytes = 1 << 20;
  // Everything kept per entry counts against it (semantics.md section 6):
  // keys, values, entry bookkeeping and remembered invalidations. Past it,
  // least recently used values nobody holds or waits on are evicted.
  uint64_t memory_budget_bytes = 512ULL << 20;
  // The share of the budget that remembered invalidation marks may use;
  // past it the oldest key-level marks fold into their registry's mark
  // (and the oldest registry marks into a daemon-wide one). 0: an eighth
  // of the budget.
  uint64_t invalidation_memory_bytes = 0;
  // What one entry (or registry) costs beside its key and value bytes: the
  // map node, a remembered mark's timer and its copy of the key. Measured:
  // 100,000 remembered keys of 14 bytes raised RSS by 721 bytes each (see
  // docs/operations.md, "Memory"). Not a flag; tests set 0 to count by hand.
  uint64_t entry_overhead_bytes = 704;
  uint64_t max_sessions = 100'000;
  uint64_t max_waiters = 100'000;
  uint64_t max_waiters_per_key = 50'000;
  // Open sessions of one client (its identity, else its address).
  uint64_t max_sessions_per_client = 10'000;

  // Per tenant: everything opened or held under one identity (a client
  // certificate, a registry token, or the anonymous tenant; see
  // docs/security.md). Each is below its daemon-wide cap, so one tenant
  // reaching its quota leaves room for the others.
  uint64_t max_sessions_per_tenant = 20'000;
  uint64_t max_waiters_per_tenant = 20'000;
  // Held locks and creator roles, of one tenant and of one session.
  uint64_t max_grants_per_tenant = 50'000;
  uint64_t max_grants_per_session = 1'000;
  // Bytes of stored values (with keys) one tenant may keep; 0: the whole
  // memory budget. Whatever it is, a tenant that fills the budget evicts
  // its own values first and never pushes another tenant below its fair
  // share (the budget divided among the tenants that store values).
  uint64_t tenant_memory_bytes = 0;
  // created_time (Publish) and client_created_time (Acquire) may lie at
  // most this far ahead of the daemon's clock.
  int64_t max_future_skew_ms = 3'600'000;

  // Near-cache (docs/near-cache.md). Keys registered as held by a session's
  // near-cache, over all sessions; past it, reads are answered but not
  // registered (the client then does not keep them).
  uint64_t max_tracked_keys = 1'000'000;
  // A watch that sent nothing for this long gets a heartbeat event.
  int64_t watch_heartbeat_ms = 1000;
  // A watch whose oldest push is unacked for longer is reported lost to
  // its session's next KeepAlive.
  int64_t watch_ack_timeout_ms = 5000;
};

// Registry names are short identifiers; keys are opaque bytes.
inline constexpr uint64_t kMaxRegistryChars = 128;
inline constexpr uint64_t kMaxClientNameBytes = 256;
inline constexpr uint64_t kMaxReasonBytes = 1024;

}  // namespace dogpiled::core
