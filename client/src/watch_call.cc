#include "src/watch_call.h"

#include "src/client_impl.h"

namespace dogpiled::internal {

WatchCall::WatchCall(ClientImpl& client, uint64_t session_id,
                     NearCache* cache, Listener* listener)
    : client_(client),
      member_(client.members().Current()),
      cache_(cache),
      listener_(listener) {
  request_.set_session_id(session_id);
  client.Authorize(ctx_);  // no deadline: the stream lives with the session
  member_.dogpile->async()->Watch(&ctx_, this);
  AddHold();
  StartRead(&event_);
  StartWrite(&request_);
  StartCall();
}

void WatchCall::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (released_) {
      return;
    }
    released_ = true;
  }
  RemoveHold();
}

Status WatchCall::AwaitDone() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return done_; });
  return final_;
}

bool WatchCall::NextAckLocked() {
  if (writing_ || released_ || acked_ >= applied_) {
    return false;
  }
  writing_ = true;
  acked_ = applied_;
  request_.Clear();
  request_.set_ack_seq(acked_);
  return true;
}

void WatchCall::OnWriteDone(bool ok) {
  bool write = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    write = ok && NextAckLocked();  // a failed write shows up as a read too
  }
  if (write) {
    StartWrite(&request_);
  }
}

void WatchCall::OnReadDone(bool ok) {
  if (!ok) {
    listener_->OnWatchBroken();
    return;
  }
  listener_->OnHeard();
  bool write = false;
  switch (event_.kind()) {
    case ::dogpiled::v1::WatchEvent::KIND_SUBSCRIBED:
      listener_->OnSubscribed(event_.watch_id(),
                              std::chrono::milliseconds(event_.heartbeat_ms()));
      break;
    case ::dogpiled::v1::WatchEvent::KIND_INVALIDATED: {
      // Dropped (and reads in flight poisoned) before the ack leaves.
      cache_->Drop(event_.registry(), event_.key());
      std::lock_guard<std::mutex> lock(mu_);
      applied_ = std::max(applied_, event_.seq());
      write = NextAckLocked();
      break;
    }
    default:
      break;  // heartbeats only prove the watch alive
  }
  if (write) {
    StartWrite(&request_);
  }
  StartRead(&event_);
}

void WatchCall::OnDone(const grpc::Status& status) {
  const Status ended = FromGrpc(status);
  // Before done_: the next stream must already go where this one points.
  client_.members().NoteFailure(member_, ended);
  std::lock_guard<std::mutex> lock(mu_);
  final_ = ended;
  done_ = true;
  cv_.notify_all();
}

}  // namespace dogpiled::internal
