#include "core/errors.h"
#include "service/services.h"
#include "service/status_map.h"
#include "service/wait_reactor.h"

#include <utility>

namespace dogpiled::service {
namespace {

void ToProto(const core::AcquireResult& r, v1::AcquireResponse* out) {
  out->set_outcome(static_cast<v1::AcquireResponse::Outcome>(r.outcome));
  out->set_has_value(r.has_value);
  out->set_value(r.value.str());  // the one copy, outside the core's lock
  out->set_created_time(r.created_time);
  out->set_is_expired(r.is_expired);
  out->set_token(r.token);
  out->set_creation_deadline_ms(r.creation_deadline_ms);
  out->set_age_ms(r.age_ms);
  out->set_retry_in_ms(r.retry_in_ms);
  out->set_fresh_for_ms(r.fresh_for_ms);
  out->set_near_cache_watch_id(r.near_cache_watch_id);
}

// The answer to send when the response budget refuses one more value.
grpc::Status BudgetFull(const ResponseBudget* budget) {
  return ToGrpc(
      core::ResourceExhausted(
          "value: too many answers wait for this client to read them (at "
          "most " + std::to_string(budget->per_connection()) +
          " bytes per connection, " + std::to_string(budget->total_limit()) +
          " in all); read them, or retry")
          .WithReason(std::string(core::reason::kResponseBytesInFlight),
                      {{"field", "value"},
                       {"limit", std::to_string(budget->per_connection())}}));
}

// A unary answer that holds its share of the response budget until gRPC is
// done with it. Its OnDone only releases and deletes, so it runs inline.
class ValueReactor final : public grpc::ServerUnaryReactor {
 public:
  void OnDone() override { delete this; }
  bool InternalInlineable() override { return true; }
  Reservation& reservation() { return reservation_; }

 private:
  Reservation reservation_;
};

}  // namespace

grpc::ServerUnaryReactor* DogpileService::FinishWhenDurable(
    grpc::CallbackServerContext* ctx, const Serving& serving,
    std::function<void()> on_ok, core::AckWaitPtr acks) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // Acks first, then durability, then the commit: each barrier, taken
  // after the one before, still covers every record journaled before it.
  // No lock is held meanwhile.
  auto finish = [reactor, on_ok = std::move(on_ok)](core::Status s) {
    if (s.ok()) {
      on_ok();
    }
    reactor->Finish(ToGrpc(s));
  };
  auto when_durable = [serving, finish](core::Status s) {
    if (!s.ok()) {
      finish(s);
      return;
    }
    AfterCommit(serving, finish);
  };
  auto when_applied = [durability = durability_,
                       when_durable](core::Status applied) {
    if (!applied.ok() || durability == nullptr) {
      when_durable(applied);
      return;
    }
    durability->AfterDurable(when_durable);
  };
  if (acks != nullptr) {
    acks->Then(std::move(when_applied));
  } else {
    when_applied(core::Status());
  }
  return reactor;
}

grpc::ServerUnaryReactor* DogpileService::Acquire(
    grpc::CallbackServerContext* ctx, const v1::AcquireRequest* request,
    v1::AcquireResponse* response) {
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  if (grpc::Status s = auth_->Check(ctx, request->registry(),
                                    request->session_id(), serving.core.get());
      !s.ok()) {
    return FinishNow(ctx, s);
  }
  // As in Peek: a connection that reads nothing gets no more copies made
  // for it (refused before the core call, nothing is granted).
  if (budget_ != nullptr && budget_->Exhausted(ctx->peer())) {
    return FinishNow(ctx, BudgetFull(budget_));
  }
  core::AcquireRequest r;
  r.registry = request->registry();
  r.key = request->key();
  r.session_id = request->session_id();
  r.expire_ms = request->expire_ms();
  r.wait_timeout_ms = WaitWithinDeadline(ctx, request->wait_timeout_ms());
  r.creation_timeout_ms = request->creation_timeout_ms();
  if (request->has_client_created_time()) {
    r.client_created_time = request->client_created_time();
  }
  r.early_refresh_beta = request->early_refresh_beta();
  r.max_stale_ms = request->max_stale_ms();
  r.request_id = request->request_id();
  r.near_cache = request->near_cache();

  auto* reactor = new WaitReactor(serving.core, ctx);
  // Answers once the grant (or the read) is committed: in replicated mode
  // nothing reaches a client that a new leader might not hold.
  auto deliver = [reactor, response, request, ctx, budget = budget_](
                     core::StatusOr<core::AcquireResult> result) {
    if (!result.ok()) {
      reactor->Finish(ToGrpc(result.status()));
      return;
    }
    core::AcquireResult& got = result.value();
    if (got.has_value && got.outcome != core::Outcome::kCreate) {
      // The call was admitted while its connection was reading: its
      // answer waits for room rather than failing, holding the shared
      // value (a Publish answering 1,000 parked calls at once).
      reactor->reservation().Queue(
          budget, ctx->peer(), got.value.size(),
          [reactor, response, got = std::move(got)] {
            ToProto(got, response);
            reactor->Finish(grpc::Status::OK);
          });
      return;
    }
    if (got.has_value &&
        !reactor->reservation().Take(budget, ctx->peer(), got.value.size())) {
      // A creator must learn of its role at once: it gets it without the
      // previous value.
      got.has_value = false;
      got.value.clear();
    }
    ToProto(got, response);
    if (got.outcome == core::Outcome::kCreate) {
      reactor->NoteGrant(request->registry(), request->key(),
                         request->session_id(), got.token,
                         /*is_lock=*/false);
    }
    reactor->Finish(grpc::Status::OK);
  };
  const uint64_t wait_id = serving.core->Acquire(
      r, DeliverWhenCommitted<core::AcquireResult>(serving, reactor,
                                                   std::move(deliver)));
  reactor->SetWaitId(wait_id);
  return reactor;
}

grpc::ServerUnaryReactor* DogpileService::Publish(
    grpc::CallbackServerContext* ctx, const v1::PublishRequest* request,
    v1::PublishResponse* response) {
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  if (grpc::Status s = auth_->Check(ctx, request->registry(),
                                    request->session_id(), serving.core.get());
      !s.ok()) {
    return FinishNow(ctx, s);
  }
  if (durability_ != nullptr) {
    // Nothing new is accepted that can no longer be made durable.
    if (core::Status health = durability_->Health(); !health.ok()) {
      return FinishNow(ctx, ToGrpc(health));
    }
  }
  core::PublishRequest r;
  r.registry = request->registry();
  r.key = request->key();
  r.session_id = request->session_id();
  r.token = request->token();
  r.value = request->value();
  if (request->has_created_time()) {
    r.created_time = request->created_time();
  }
  core::AckWaitPtr acks;
  core::StatusOr<double> created = serving.core->Publish(r, &acks);
  if (!created.ok()) {
    return FinishCommitted(ctx, serving, created.status());
  }
  return FinishWhenDurable(
      ctx, serving,
      [response, t = created.value()] { response->set_created_time(t); },
      std::move(acks));
}

grpc::ServerUnaryReactor* DogpileService::Abandon(
    grpc::CallbackServerContext* ctx, const v1::AbandonRequest* request,
    v1::AbandonResponse* /*response*/) {
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  if (grpc::Status s = auth_->Check(ctx, request->registry(),
                                    request->session_id(), serving.core.get());
      !s.ok()) {
    return FinishNow(ctx, s);
  }
  core::AbandonRequest r;
  r.registry = request->registry();
  r.key = request->key();
  r.session_id = request->session_id();
  r.token = request->token();
  r.reason = request->reason();
  r.retry_after_ms = request->retry_after_ms();
  return FinishCommitted(ctx, serving, serving.core->Abandon(r));
}

grpc::ServerUnaryReactor* DogpileService::Invalidate(
    grpc::CallbackServerContext* ctx, const v1::InvalidateRequest* request,
    v1::InvalidateResponse* /*response*/) {
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  if (grpc::Status s = auth_->CheckRegistry(ctx, request->registry());
      !s.ok()) {
    return FinishNow(ctx, s);
  }
  core::InvalidateRequest r;
  r.registry = request->registry();
  r.key = request->key();
  r.hard = request->hard();
  // Applied even when the journal has failed: more invalidation is always
  // safe. The answer still says whether it is durable.
  core::AckWaitPtr acks;
  if (core::Status s = serving.core->Invalidate(r, &acks); !s.ok()) {
    return FinishNow(ctx, ToGrpc(s));
  }
  return FinishWhenDurable(ctx, serving, [] {}, std::move(acks));
}

grpc::ServerUnaryReactor* DogpileService::Peek(grpc::CallbackServerContext* ctx,
                                               const v1::PeekRequest* request,
                                               v1::PeekResponse* response) {
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  if (grpc::Status s = auth_->CheckRegistry(ctx, request->registry());
      !s.ok()) {
    return FinishNow(ctx, s);
  }
  // A client that reads nothing would have each refused Peek copy the
  // value first, under the core's lock; refuse it before. (A connection at
  // its limit is refused even a Peek of a missing key: it is not reading.)
  if (budget_ != nullptr && budget_->Exhausted(ctx->peer())) {
    return FinishNow(ctx, BudgetFull(budget_));
  }
  core::StatusOr<core::PeekResult> peeked = serving.core->Peek(
      request->registry(), request->key(), request->expire_ms());
  auto* reactor = new ValueReactor();
  if (peeked.ok() && peeked->has_value &&
      !reactor->reservation().Take(budget_, ctx->peer(),
                                   peeked->value.size())) {
    reactor->Finish(BudgetFull(budget_));
    return reactor;
  }
  if (peeked.ok()) {
    response->set_has_value(peeked->has_value);
    response->set_value(peeked->value.str());
    response->set_created_time(peeked->created_time);
    response->set_is_expired(peeked->is_expired);
    response->set_creating(peeked->creating);
    response->set_age_ms(peeked->age_ms);
  }
  if (serving.commit == nullptr) {
    reactor->Finish(ToGrpc(peeked.status()));
    return reactor;
  }
  // What it read may be a change not committed yet: answer once it is.
  serving.commit->AfterDurable(
      [reactor, status = peeked.status()](core::Status s) {
        reactor->Finish(ToGrpc(s.ok() ? status : s));
      });
  return reactor;
}

}  // namespace dogpiled::service
