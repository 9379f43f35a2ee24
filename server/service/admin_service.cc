#include "service/services.h"

namespace dogpiled::service {

grpc::ServerUnaryReactor* AdminService::Stats(grpc::CallbackServerContext* ctx,
                                              const v1::StatsRequest*,
                                              v1::StatsResponse* response) {
  if (grpc::Status s = auth_->CheckAdmin(ctx); !s.ok()) {
    return FinishNow(ctx, s);
  }
  const core::Stats s = core_->GetStats();
  response->set_sessions(s.sessions);
  response->set_registries(s.registries);
  response->set_entries(s.entries);
  response->set_waiters(s.waiters);
  response->set_stored_bytes(s.stored_bytes);
  response->set_acquires_fresh(s.acquires_fresh);
  response->set_acquires_stale(s.acquires_stale);
  response->set_acquires_create(s.acquires_create);
  response->set_acquires_not_ready(s.acquires_not_ready);
  response->set_publishes(s.publishes);
  response->set_abandons(s.abandons);
  response->set_fencing_rejections(s.fencing_rejections);
  response->set_session_expiries(s.session_expiries);
  response->set_creation_timeouts(s.creation_timeouts);
  response->set_evictions(s.evictions);
  response->set_lock_grants(s.lock_grants);
  response->set_early_refreshes(s.early_refreshes);
  response->set_wait_timeouts(s.wait_timeouts);
  return FinishNow(ctx, grpc::Status::OK);
}

}  // namespace dogpiled::service
