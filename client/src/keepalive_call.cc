#include "src/keepalive_call.h"

#include "src/client_impl.h"

namespace dogpiled::internal {

KeepAliveCall::KeepAliveCall(ClientImpl& client, uint64_t session_id,
                             Listener* listener)
    : client_(client),
      member_(client.members().Current()),
      listener_(listener),
      session_id_(session_id) {
  request_.set_session_id(session_id_);
  client.Authorize(ctx_);  // no deadline: the stream lives with the session
  member_.sessions->async()->KeepAlive(&ctx_, this);
  AddHold();
  StartRead(&response_);
  StartCall();
}

bool KeepAliveCall::Renew(SteadyTime now, uint64_t watch_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The answer may arrive before OnWriteDone: wait for both.
    if (awaiting_answer_ || writing_ || broken_ || released_) {
      return false;
    }
    awaiting_answer_ = true;
    writing_ = true;
    sent_ = now;
    request_.set_watch_id(watch_id);
  }
  // Outside the lock: a reaction may run inline.
  StartWrite(&request_);
  return true;
}

void KeepAliveCall::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (released_) {
      return;
    }
    released_ = true;
  }
  RemoveHold();
}

Status KeepAliveCall::AwaitDone() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return done_; });
  return final_;
}

void KeepAliveCall::OnWriteDone(bool /*ok*/) {
  // A failed write shows up as a failed read too.
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
}

void KeepAliveCall::OnReadDone(bool ok) {
  if (!ok) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      broken_ = true;
    }
    listener_->OnBroken();
    return;
  }
  SteadyTime sent;
  uint64_t named = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sent = sent_;
    // Written only by Renew, after this answer (one renewal at a time).
    named = request_.watch_id();
    awaiting_answer_ = false;
  }
  listener_->OnRenewed(sent, std::chrono::milliseconds(response_.ttl_ms()),
                       named, response_.watch_lost());
  StartRead(&response_);
}

void KeepAliveCall::OnDone(const grpc::Status& status) {
  const Status ended = FromGrpc(status);
  // Before done_: the next stream must already go where this one points.
  client_.members().NoteFailure(member_, ended);
  std::lock_guard<std::mutex> lock(mu_);
  final_ = ended;
  done_ = true;
  cv_.notify_all();
}

}  // namespace dogpiled::internal
