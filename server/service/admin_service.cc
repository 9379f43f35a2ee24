#include "service/services.h"

#include "core/errors.h"
#include "service/status_map.h"

namespace dogpiled::service {

grpc::ServerUnaryReactor* AdminService::Stats(grpc::CallbackServerContext* ctx,
                                              const v1::StatsRequest*,
                                              v1::StatsResponse* response) {
  if (grpc::Status s = auth_->CheckAdmin(ctx); !s.ok()) {
    return FinishNow(ctx, s);
  }
  Serving serving;
  if (grpc::Status refused; !cores_->Get(&serving, &refused)) {
    return FinishNow(ctx, refused);
  }
  const core::Stats s = serving.core->GetStats();
  const auto* descriptor = response->GetDescriptor();
  const auto* reflection = response->GetReflection();
#define DOGPILED_STATS_SET(name, number) \
  reflection->SetUInt64(response, descriptor->FindFieldByNumber(number), \
                        s.name);
  DOGPILED_STATS_FIELDS(DOGPILED_STATS_SET)
#undef DOGPILED_STATS_SET
  return FinishNow(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdminService::Cluster(
    grpc::CallbackServerContext* ctx, const v1::ClusterRequest*,
    v1::ClusterResponse* response) {
  if (grpc::Status s = auth_->CheckAdmin(ctx); !s.ok()) {
    return FinishNow(ctx, s);
  }
  if (!cluster_) {
    return FinishNow(
        ctx, ToGrpc(core::Status(core::Code::kFailedPrecondition,
                                 "this daemon is a single node (started "
                                 "without --peers): it has no group")
                        .WithReason(std::string(core::reason::kNotReplicated))));
  }
  return FinishNow(ctx, ToGrpc(cluster_(response)));
}

}  // namespace dogpiled::service
