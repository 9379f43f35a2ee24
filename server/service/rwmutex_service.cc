#include "service/services.h"
#include "service/status_map.h"
#include "service/wait_reactor.h"

namespace dogpiled::service {

grpc::ServerUnaryReactor* RWMutexService::Lock(
    grpc::CallbackServerContext* ctx, const v1::LockRequest* request,
    v1::LockResponse* response) {
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  if (grpc::Status s = auth_->Check(ctx, request->registry(),
                                    request->session_id(), serving.core.get());
      !s.ok()) {
    return FinishNow(ctx, s);
  }
  core::LockRequest r;
  r.registry = request->registry();
  r.key = request->key();
  r.session_id = request->session_id();
  r.mode = request->mode();
  r.wait_timeout_ms = WaitWithinDeadline(ctx, request->wait_timeout_ms());
  r.request_id = request->request_id();

  auto* reactor = new WaitReactor(serving.core, ctx);
  auto deliver = [reactor, response,
                  request](core::StatusOr<core::LockResult> result) {
    if (result.ok()) {
      response->set_acquired(result->acquired);
      response->set_token(result->token);
      if (result->acquired) {
        reactor->NoteGrant(request->registry(), request->key(),
                           request->session_id(), result->token,
                           /*is_lock=*/true);
      }
    }
    reactor->Finish(ToGrpc(result.status()));
  };
  // Answers once the grant is committed (replicated mode), as Acquire.
  const uint64_t wait_id = serving.core->Lock(
      r, DeliverWhenCommitted<core::LockResult>(serving, reactor,
                                                std::move(deliver)));
  reactor->SetWaitId(wait_id);
  return reactor;
}

grpc::ServerUnaryReactor* RWMutexService::Unlock(
    grpc::CallbackServerContext* ctx, const v1::UnlockRequest* request,
    v1::UnlockResponse* /*response*/) {
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  if (grpc::Status s = auth_->Check(ctx, request->registry(),
                                    request->session_id(), serving.core.get());
      !s.ok()) {
    return FinishNow(ctx, s);
  }
  return FinishCommitted(
      ctx, serving,
      serving.core->Unlock(request->registry(), request->key(),
                           request->session_id(), request->token()));
}

}  // namespace dogpiled::service
