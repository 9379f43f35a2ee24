#include "service/services.h"

#include <memory>
#include <utility>

#include "core/errors.h"
#include "service/status_map.h"

namespace dogpiled::service {
namespace {

// One KeepAlive stream: read a request, renew, write the answer, repeat.
// Reads and writes alternate, so at most one of each is ever outstanding.
class KeepAliveReactor final
    : public grpc::ServerBidiReactor<v1::KeepAliveRequest,
                                     v1::KeepAliveResponse> {
 public:
  // `identity` is the stream's caller; not ok: the stream is refused.
  // `core` null: the stream is refused with `refused` (not the leader).
  // A stream stays with the Coordinator it began on: once that one is
  // deposed it answers UNAVAILABLE and the client opens a new stream.
  KeepAliveReactor(Serving serving, const grpc::Status& refused,
                   core::StatusOr<std::string> identity)
      : core_(std::move(serving.core)),
        commit_(std::move(serving.commit)),
        near_cache_(std::move(serving.near_cache)),
        identity_(identity.ok() ? identity.value() : std::string()) {
    if (core_ == nullptr) {
      Finish(refused);
      return;
    }
    if (!identity.ok()) {
      Finish(ToGrpc(identity.status()));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side; the session lives on its TTL
      Finish(grpc::Status::OK);
      return;
    }
    if (core::Status s = core_->CheckOwner(request_.session_id(), identity_);
        !s.ok()) {
      Finish(ToGrpc(s));
      return;
    }
    core::StatusOr<int64_t> ttl = core_->KeepAlive(request_.session_id());
    if (!ttl.ok()) {
      Finish(ToGrpc(ttl.status()));
      return;
    }
    response_.set_session_id(request_.session_id());
    response_.set_ttl_ms(ttl.value());
    // Renewed first: the watch check may satisfy pushes of a session that
    // is alive.
    response_.set_watch_lost(
        near_cache_ != nullptr
            ? near_cache_->KeepAlive(request_.session_id(),
                                     request_.watch_id())
            : request_.watch_id() != 0);
    if (commit_ == nullptr) {
      StartWrite(&response_);
      return;
    }
    // Replicated mode: the renewal is the leader's alone (not journaled),
    // so answer it only under a confirmed lead, as a read. A leader woken
    // from a stop after a successor took over must not promise a lease
    // the successor will not keep; it learns it was deposed and refuses.
    // Until this runs no operation is outstanding, and OnDone waits for
    // Finish, so `this` lives.
    commit_->AfterDurable([this](core::Status s) {
      if (!s.ok()) {
        Finish(ToGrpc(s));
        return;
      }
      StartWrite(&response_);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(ToGrpc(core::Status(core::Code::kCancelled, "stream broken")
                        .WithReason(std::string(
                            core::reason::kKeepAliveBroken))));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  const std::shared_ptr<core::Coordinator> core_;
  const std::shared_ptr<core::DurabilityBarrier> commit_;  // null: single
  const std::shared_ptr<core::NearCacheTracker> near_cache_;  // may be null
  const std::string identity_;
  v1::KeepAliveRequest request_;
  v1::KeepAliveResponse response_;
};

}  // namespace

grpc::ServerUnaryReactor* SessionsService::Open(
    grpc::CallbackServerContext* ctx, const v1::OpenRequest* request,
    v1::OpenResponse* response) {
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  core::StatusOr<std::string> identity = auth_->Identity(ctx);
  if (!identity.ok()) {
    return FinishNow(ctx, ToGrpc(identity.status()));
  }
  core::StatusOr<core::OpenResult> opened = serving.core->Open(
      request->ttl_ms(), request->client_name(),
      Auth::ClientKey(ctx, identity.value()), identity.value());
  if (opened.ok()) {
    response->set_session_id(opened->session_id);
    response->set_ttl_ms(opened->ttl_ms);
  }
  return FinishCommitted(ctx, serving, opened.status());
}

grpc::ServerBidiReactor<v1::KeepAliveRequest, v1::KeepAliveResponse>*
SessionsService::KeepAlive(grpc::CallbackServerContext* ctx) {
  Serving serving;
  grpc::Status refused;
  cores_->Get(&serving, &refused);
  return new KeepAliveReactor(std::move(serving), refused,
                              auth_->Identity(ctx));
}

grpc::ServerUnaryReactor* SessionsService::Close(
    grpc::CallbackServerContext* ctx, const v1::CloseRequest* request,
    v1::CloseResponse* /*response*/) {
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  if (grpc::Status s = auth_->CheckSession(ctx, request->session_id(),
                                           serving.core.get());
      !s.ok()) {
    return FinishNow(ctx, s);
  }
  return FinishCommitted(ctx, serving,
                         serving.core->Close(request->session_id()));
}

}  // namespace dogpiled::service
