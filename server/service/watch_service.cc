// Dogpile.Watch: the stream that carries near-cache invalidations to one
// session and brings its acks back (docs/near-cache.md). The tracker keeps
// each watch's outbox; this reactor only moves events from it to the wire,
// one write at a time, and acks from the wire to it.
#include <memory>
#include <mutex>

#include "core/errors.h"
#include "service/services.h"
#include "service/status_map.h"

namespace dogpiled::service {
namespace {

class WatchReactor;

// What the tracker's wake-up holds: the reactor while it lives. Its mutex
// also serializes every operation started on the stream (writes, reads,
// Finish). Never held while calling a tracker method that runs callbacks
// (Ack, OpenWatch), since those may wake this same watch.
struct WatchLink {
  std::mutex mu;
  WatchReactor* reactor = nullptr;
};

class WatchReactor final
    : public grpc::ServerBidiReactor<v1::WatchRequest, v1::WatchEvent> {
 public:
  // `core` null: refused with `refused` (replicated mode, not the leader).
  // The watch stays with the tracker (and term) it began on: once that one
  // is shut down, the stream ends and the client opens a new one.
  WatchReactor(Serving serving, const grpc::Status& refused,
               core::StatusOr<std::string> identity)
      : core_(std::move(serving.core)),
        tracker_(std::move(serving.near_cache)),
        identity_(identity.ok() ? identity.value() : std::string()),
        link_(std::make_shared<WatchLink>()) {
    link_->reactor = this;
    std::lock_guard<std::mutex> lock(link_->mu);
    if (core_ == nullptr) {
      FinishLocked(refused);
    } else if (!identity.ok()) {
      FinishLocked(ToGrpc(identity.status()));
    } else if (tracker_ == nullptr) {
      // Not UNAVAILABLE: that would send a client away from this daemon.
      FinishLocked(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                "Watch: this daemon keeps no near-cache "
                                "table"));
    } else {
      StartRead(&request_);
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side, or the stream broke
      std::lock_guard<std::mutex> lock(link_->mu);
      FinishLocked(grpc::Status::OK);
      return;
    }
    core::Status status = watch_id_ == 0 ? Subscribe() : Acknowledge();
    std::lock_guard<std::mutex> lock(link_->mu);
    if (!status.ok()) {
      FinishLocked(ToGrpc(status));
      return;
    }
    if (!finished_) {
      StartRead(&request_);
    }
    PumpLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(link_->mu);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream broken"));
    }
    if (finish_status_) {
      Finish(*finish_status_);
      finish_status_.reset();
      return;
    }
    PumpLocked();
  }

  void OnDone() override {
    if (watch_id_ != 0) {
      tracker_->WatchGone(watch_id_);
    }
    {
      std::lock_guard<std::mutex> lock(link_->mu);
      link_->reactor = nullptr;
    }
    delete this;
  }

  // Called by the tracker's wake-up, with no lock held.
  static void Wake(const std::shared_ptr<WatchLink>& link) {
    std::lock_guard<std::mutex> lock(link->mu);
    if (link->reactor != nullptr) {
      link->reactor->PumpLocked();
    }
  }

 private:
  core::Status Subscribe() {
    const core::SessionId session = request_.session_id();
    if (session == 0) {
      return core::FieldInvalid("session_id",
                                "required in the first WatchRequest");
    }
    if (core::Status s = core_->CheckOwner(session, identity_); !s.ok()) {
      return s;
    }
    core::StatusOr<uint64_t> opened =
        core_->OpenWatch(session, [link = std::weak_ptr<WatchLink>(link_)] {
          if (auto held = link.lock()) {
            Wake(held);
          }
        });
    if (!opened.ok()) {
      return opened.status();
    }
    std::lock_guard<std::mutex> lock(link_->mu);
    watch_id_ = opened.value();  // the SUBSCRIBED event goes out next
    return {};
  }

  core::Status Acknowledge() {
    return tracker_->Ack(watch_id_, request_.ack_seq());
  }

  void PumpLocked() {
    if (finished_ || writing_ || watch_id_ == 0) {
      return;
    }
    core::Status closed;
    std::optional<core::WatchEvent> event =
        tracker_->NextEvent(watch_id_, &closed);
    if (!event) {
      if (!closed.ok()) {
        FinishLocked(ToGrpc(closed));
      }
      return;
    }
    event_.Clear();
    event_.set_kind(static_cast<v1::WatchEvent::Kind>(event->kind));
    event_.set_seq(event->seq);
    event_.set_registry(event->registry);
    event_.set_key(event->key);
    event_.set_watch_id(event->watch_id);
    event_.set_heartbeat_ms(event->heartbeat_ms);
    writing_ = true;
    StartWrite(&event_);
  }

  // Finish exactly once, and never with a write outstanding.
  void FinishLocked(const grpc::Status& status) {
    if (finished_) {
      return;
    }
    finished_ = true;
    if (writing_) {
      finish_status_ = status;
    } else {
      Finish(status);
    }
  }

  const std::shared_ptr<core::Coordinator> core_;
  const std::shared_ptr<core::NearCacheTracker> tracker_;
  const std::string identity_;
  const std::shared_ptr<WatchLink> link_;
  v1::WatchRequest request_;  // touched by the read side only
  // Guarded by link_->mu, except watch_id_, which is written once under it
  // before any read of it outside (OnDone, Acknowledge come later).
  uint64_t watch_id_ = 0;
  v1::WatchEvent event_;
  bool writing_ = false;
  bool finished_ = false;
  std::optional<grpc::Status> finish_status_;
};

}  // namespace

grpc::ServerBidiReactor<v1::WatchRequest, v1::WatchEvent>*
DogpileService::Watch(grpc::CallbackServerContext* ctx) {
  Serving serving;
  grpc::Status refused;
  cores_->Get(&serving, &refused);
  return new WatchReactor(std::move(serving), refused, auth_->Identity(ctx));
}

}  // namespace dogpiled::service
