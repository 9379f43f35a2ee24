// One KeepAlive stream: the session's renewals, one request at a time.
//
// The session's keep-alive thread starts renewals; gRPC threads deliver the
// answers. A hold keeps the stream open for renewals started from outside
// reactions, so gRPC calls OnDone only after Release().
//
// Thread-safe: Renew, Cancel, Release and AwaitDone may be called from any
// thread, but the object must outlive OnDone (AwaitDone, then destroy).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "dogpiled/status.h"
#include "dogpiled/v1/sessions.grpc.pb.h"

namespace dogpiled::internal {

class ClientImpl;
struct Member;

using SteadyTime = std::chrono::steady_clock::time_point;

class KeepAliveCall final
    : public grpc::ClientBidiReactor<::dogpiled::v1::KeepAliveRequest,
                                     ::dogpiled::v1::KeepAliveResponse> {
 public:
  // Told about answers and the end of the stream, on gRPC's threads. Must
  // not block and must not destroy the call.
  class Listener {
   public:
    virtual ~Listener() = default;
    // The renewal sent at `sent`, naming `watch_id`, was answered: the
    // daemon renewed the lease no earlier than `sent`, for `ttl`;
    // `watch_lost`: the near-cache must drop everything (near-cache.md).
    virtual void OnRenewed(SteadyTime sent, std::chrono::milliseconds ttl,
                           uint64_t watch_id, bool watch_lost) = 0;
    // No more answers will come; Release() and AwaitDone() for the status.
    virtual void OnBroken() = 0;
  };

  // Starts the stream on `client`'s channel, with its credentials.
  KeepAliveCall(ClientImpl& client, uint64_t session_id, Listener* listener);
  ~KeepAliveCall() override = default;

  // Sends one renewal naming the near-cache watch the client trusts (0:
  // none), unless one is still unanswered or the stream broke. Returns
  // whether it sent.
  bool Renew(SteadyTime now, uint64_t watch_id = 0);
  void Cancel() { ctx_.TryCancel(); }
  // Gives up the hold; call once, when no more Renew calls will come.
  void Release();
  // Blocks until OnDone ran, then returns the stream's final status.
  Status AwaitDone();

 private:
  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  // Constant after construction. The client outlives its sessions' calls;
  // the member is the one this stream went to.
  ClientImpl& client_;
  Member& member_;
  Listener* const listener_;
  const uint64_t session_id_;

  grpc::ClientContext ctx_;
  ::dogpiled::v1::KeepAliveRequest request_;  // owned by the write in flight
  ::dogpiled::v1::KeepAliveResponse response_;  // owned by the read

  std::mutex mu_;
  std::condition_variable cv_;
  bool awaiting_answer_ = false;  // guarded by mu_
  bool writing_ = false;          // guarded by mu_; one write at a time
  bool broken_ = false;           // guarded by mu_
  bool released_ = false;         // guarded by mu_
  bool done_ = false;             // guarded by mu_
  SteadyTime sent_;               // guarded by mu_
  Status final_;                  // guarded by mu_
};

}  // namespace dogpiled::internal
