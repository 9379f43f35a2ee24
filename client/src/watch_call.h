// One Dogpile.Watch stream (docs/near-cache.md): subscribes a session,
// applies each INVALIDATED event to the near-cache, then acks it.
//
// The session's keep-alive thread creates, cancels and releases it; gRPC
// threads deliver events. Thread-safe in the same way as KeepAliveCall:
// the object must outlive OnDone (AwaitDone, then destroy).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "dogpiled/status.h"
#include "dogpiled/v1/dogpile.grpc.pb.h"
#include "src/near_cache.h"

namespace dogpiled::internal {

class ClientImpl;
struct Member;

class WatchCall final
    : public grpc::ClientBidiReactor<::dogpiled::v1::WatchRequest,
                                     ::dogpiled::v1::WatchEvent> {
 public:
  // Told about the stream, on gRPC's threads. Must not block and must not
  // destroy the call.
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnSubscribed(uint64_t watch_id,
                              std::chrono::milliseconds heartbeat) = 0;
    // Any event: the watch is alive.
    virtual void OnHeard() = 0;
    // No more events will come; Release() and AwaitDone() for the status.
    virtual void OnWatchBroken() = 0;
  };

  WatchCall(ClientImpl& client, uint64_t session_id, NearCache* cache,
            Listener* listener);
  ~WatchCall() override = default;

  void Cancel() { ctx_.TryCancel(); }
  void Release();  // once, when the owner is done with it
  Status AwaitDone();

 private:
  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;
  // Writes the newest ack if none is being written. Requires mu_ held;
  // returns whether the caller must StartWrite(&request_) after unlocking.
  bool NextAckLocked();

  // Constant after construction. The client outlives its sessions' calls;
  // the member is the one this stream went to.
  ClientImpl& client_;
  Member& member_;
  NearCache* const cache_;
  Listener* const listener_;

  grpc::ClientContext ctx_;
  ::dogpiled::v1::WatchRequest request_;  // owned by the write in flight
  ::dogpiled::v1::WatchEvent event_;      // owned by the read

  std::mutex mu_;
  std::condition_variable cv_;
  bool writing_ = true;     // guarded by mu_; the subscribe request first
  uint64_t applied_ = 0;    // guarded by mu_; highest seq applied
  uint64_t acked_ = 0;      // guarded by mu_; highest seq written
  bool released_ = false;   // guarded by mu_
  bool done_ = false;       // guarded by mu_
  Status final_;            // guarded by mu_
};

}  // namespace dogpiled::internal
