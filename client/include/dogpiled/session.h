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
  kAlive,   // renewed on time so far
  kLost,    // not renewed within its TTL, or the daemon forgot it: every
            // grant it held is gone
  kClosed,  // closed by Close() or the destructor
};
DOGPILED_EXPORT const char* SessionStateName(SessionState state);

struct SessionOptions {
  // Lease length; 0 asks for the daemon's default (10 s unless configured).
  std::chrono::milliseconds ttl{0};
  // Overrides ClientOptions::client_name for this session.
  std::string client_name{};
  // Called once when the session is lost, with the reason, on the
  // session's keep-alive thread. It must return promptly and must not
  // destroy the Session (destroying it elsewhere is fine).
  std::function<void(const Status&)> on_lost{};
};

// Opens a session and keeps it alive in the background on one KeepAlive
// stream, renewing every third of the TTL. Loss is reported before the
// daemon could have ended the lease (within the TTL after the last renewal
// that was answered): through on_lost and state(). A broken stream is
// reopened while the lease may still be alive; a session the daemon
// reports unknown (NOT_FOUND) is lost at once.
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

  uint64_t id() const;
  std::chrono::milliseconds ttl() const;  // as granted by the daemon
  SessionState state() const;
  // Why the session was lost (OK while alive or after a clean close).
  Status loss_reason() const;

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
