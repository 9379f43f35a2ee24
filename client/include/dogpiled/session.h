// A session: the lease every grant hangs on.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dogpiled/export.h"
#include "dogpiled/status.h"

namespace dogpiled {

class Client;

namespace internal {
class SessionImpl;
}  // namespace internal

enum class SessionState {
  kAlive,   // renewed on time so far (possibly a re-opened lease)
  kLost,    // not renewed within its TTL, or the daemon forgot it: every
            // grant it held is gone. With reopen, only until a new lease
            // is open.
  kClosed,  // closed by Close() or the destructor
};
DOGPILED_EXPORT const char* SessionStateName(SessionState state);

struct SessionOptions {
  // Lease length; 0 asks for the daemon's default (10 s unless configured).
  std::chrono::milliseconds ttl{0};
  // Overrides ClientOptions::client_name for this session.
  std::string client_name{};
  // Called once per lost lease, with the reason, on the session's
  // keep-alive thread, before a new lease is opened. It must return
  // promptly and must not destroy the Session (destroying it elsewhere is
  // fine).
  std::function<void(const Status&)> on_lost{};
  // After a loss, open a new lease by itself (retrying while the daemon is
  // unreachable), so Dogpile, ReadWriteMutex and NameRegistry objects made
  // from this Session keep working. false: the Session stays lost and
  // every call fails with NOT_FOUND until the application makes a new one.
  bool reopen = true;
};

// What the session's near-cache holds (ClientOptions::near_cache_bytes).
struct NearCacheStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;  // as counted against near_cache_bytes
  // A watch is trusted: FRESH values may be served from memory.
  bool serving = false;
};

// Opens a session and keeps it alive in the background on one KeepAlive
// stream, renewing every third of the TTL (docs/sessions.md describes the
// behaviour, the same in the Python SDK):
//
// - Local lease deadline: the lease counts as lost four fifths of the TTL
//   after the last renewal the daemon answered, before the daemon could
//   have ended it; a session the daemon reports unknown (NOT_FOUND) is lost
//   at once.
// - At that moment every creator role and lock taken under the lease is
//   lost: on_lost is called, publishing, abandoning or unlocking one of
//   them fails with NOT_FOUND (reason SESSION_NOT_FOUND) without reaching
//   the daemon, and the old lease is closed on the daemon if it can be
//   reached, so its grants pass on at once.
// - Then (unless reopen is false) a new lease is opened; new grants are
//   taken under it. A grant of the lost lease is never carried over.
//
// Move-only handle; the destructor stops the keep-alive thread and closes
// the session, releasing everything it held. Dogpile and ReadWriteMutex
// objects made from it keep working memory alive, but their calls fail
// once the session is closed.
//
// Thread-safe: every method may be called from any thread at once, except
// that the destructor and move assignment must not race with other calls.
class DOGPILED_EXPORT Session {
 public:
  // Opens a session on the daemon (one Open call), then starts keeping it
  // alive.
  static StatusOr<Session> Open(const Client& client,
                                SessionOptions options = {});

  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The current lease's id; it changes when a lost lease is replaced.
  uint64_t id() const;
  // How many lost leases were replaced so far.
  uint64_t reopens() const;
  std::chrono::milliseconds ttl() const;  // as granted by the daemon
  SessionState state() const;
  // Why the session was lost (OK while alive or after a clean close).
  Status loss_reason() const;
  // All zero when the near-cache is off.
  NearCacheStats near_cache_stats() const;

  // Stops keeping the session alive and closes it on the daemon. Returns
  // NOT_FOUND if the daemon had already ended it, OK if already closed.
  Status Close();

 private:
  friend class Dogpile;
  friend class ReadWriteMutex;
  explicit Session(std::shared_ptr<internal::SessionImpl> impl);
  std::shared_ptr<internal::SessionImpl> impl_;
};

}  // namespace dogpiled
