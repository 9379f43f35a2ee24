// The state behind a Session handle: its id, its lease, and the thread that
// keeps the lease alive on one KeepAlive stream.
//
// Thread-safe: every public method may be called from any thread at once.
// Kept alive by the handle, by every Dogpile/ReadWriteMutex made from it,
// and by its own keep-alive thread while that runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

#include "dogpiled/session.h"
#include "src/client_impl.h"
#include "src/keepalive_call.h"

namespace dogpiled::internal {

class SessionImpl final : public KeepAliveCall::Listener,
                          public std::enable_shared_from_this<SessionImpl> {
 public:
  // Opens the session on the daemon and starts the keep-alive thread.
  static StatusOr<std::shared_ptr<SessionImpl>> Open(
      std::shared_ptr<ClientImpl> client, const SessionOptions& options);
  ~SessionImpl() override;

  ClientImpl& client() { return *client_; }
  uint64_t id() const { return id_; }
  std::chrono::milliseconds ttl() const;
  SessionState state() const;
  Status loss_reason() const;

  // OK while the session may be used for grants; else why not.
  Status CheckUsable() const;
  // Every call that names the session reports its status here: NOT_FOUND
  // means the daemon no longer knows the session, so it is lost.
  void Observe(const Status& status);

  // A unary call that names this session (on the stub its method belongs
  // to), observed as above.
  template <typename Stub, typename Request, typename Response>
  Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                           const Request&, Response*),
              const Request& request, Response* response,
              std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    const Status status =
        client_->Call(StubFor<Stub>(), method, request, response, wait);
    Observe(status);
    return status;
  }

  // Stops the keep-alive thread and closes the session on the daemon.
  Status Close();

  // KeepAliveCall::Listener.
  void OnRenewed(SteadyTime sent, std::chrono::milliseconds ttl) override;
  void OnBroken() override;

 private:
  SessionImpl(std::shared_ptr<ClientImpl> client, uint64_t id,
              std::chrono::milliseconds ttl, SteadyTime opened,
              std::function<void(const Status&)> on_lost);
  template <typename Stub>
  Stub& StubFor() {
    if constexpr (std::is_same_v<Stub, v1::Dogpile::Stub>) {
      return client_->dogpile();
    } else if constexpr (std::is_same_v<Stub, v1::RWMutex::Stub>) {
      return client_->rwmutex();
    } else {
      return client_->sessions();
    }
  }
  void Run();
  // Marks the session lost (once) and wakes the keep-alive thread.
  void LoseLocked(Status reason);
  // Stops the keep-alive thread and waits for it (unless called from it).
  void StopThread();

  // Constant after construction.
  const std::shared_ptr<ClientImpl> client_;
  const uint64_t id_;
  const std::function<void(const Status&)> on_lost_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::chrono::milliseconds ttl_;  // guarded by mu_
  SteadyTime renew_at_;            // guarded by mu_
  SteadyTime lost_at_;             // guarded by mu_; if not renewed by then
  bool broken_ = false;            // guarded by mu_; the stream needs redoing
  bool stopping_ = false;          // guarded by mu_
  bool lost_ = false;              // guarded by mu_
  bool closed_ = false;            // guarded by mu_
  Status loss_reason_;             // guarded by mu_
  std::thread thread_;
};

}  // namespace dogpiled::internal
