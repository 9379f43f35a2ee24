#include "service/services.h"

namespace dogpiled::service {

grpc::ServerUnaryReactor* AdminService::Stats(grpc::CallbackServerContext* ctx,
                                              const v1::StatsRequest*,
                                              v1::StatsResponse* response) {
  if (grpc::Status s = auth_->CheckAdmin(ctx); !s.ok()) {
    return FinishNow(ctx, s);
  }
  const core::Stats s = core_->GetStats();
  const auto* descriptor = response->GetDescriptor();
  const auto* reflection = response->GetReflection();
#define DOGPILED_STATS_SET(name, number) \
  reflection->SetUInt64(response, descriptor->FindFieldByNumber(number), \
                        s.name);
  DOGPILED_STATS_FIELDS(DOGPILED_STATS_SET)
#undef DOGPILED_STATS_SET
  return FinishNow(ctx, grpc::Status::OK);
}

}  // namespace dogpiled::service
