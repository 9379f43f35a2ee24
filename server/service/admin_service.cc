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

GroupAdmin* AdminService::Group(grpc::CallbackServerContext* ctx,
                               grpc::Status* refused) const {
  if (grpc::Status s = auth_->CheckAdmin(ctx); !s.ok()) {
    *refused = s;
    return nullptr;
  }
  if (!replicated_) {
    *refused = ToGrpc(
        core::Status(core::Code::kFailedPrecondition,
                     "this daemon is a single node (started without "
                     "--peers): it has no group")
            .WithReason(std::string(core::reason::kNotReplicated)));
    return nullptr;
  }
  GroupAdmin* group = group_.load();
  if (group == nullptr) {
    *refused = ToGrpc(core::ShuttingDown());  // starting, or stopping
  }
  return group;
}

grpc::ServerUnaryReactor* AdminService::Cluster(
    grpc::CallbackServerContext* ctx, const v1::ClusterRequest*,
    v1::ClusterResponse* response) {
  grpc::Status refused;
  GroupAdmin* group = Group(ctx, &refused);
  if (group == nullptr) {
    return FinishNow(ctx, refused);
  }
  return FinishNow(ctx, ToGrpc(group->Describe(response)));
}

grpc::ServerUnaryReactor* AdminService::ChangeMembers(
    grpc::CallbackServerContext* ctx, uint64_t id, const core::Status& invalid,
    const MemberChange& change) {
  grpc::Status refused;
  GroupAdmin* group = Group(ctx, &refused);
  if (group == nullptr) {
    return FinishNow(ctx, refused);
  }
  if (id == 0) {
    return FinishNow(ctx, ToGrpc(core::FieldInvalid(
                              "id", "a member's --node-id, positive")));
  }
  if (!invalid.ok()) {
    return FinishNow(ctx, ToGrpc(invalid));
  }
  auto* reactor = ctx->DefaultReactor();
  change(group, [reactor](const core::Status& s) {
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::AddMember(
    grpc::CallbackServerContext* ctx, const v1::AddMemberRequest* request,
    v1::AddMemberResponse* response) {
  const std::string& address = request->raft_address();
  const size_t colon = address.rfind(':');
  const core::Status invalid =
      colon == std::string::npos || colon == 0 || colon + 1 == address.size()
          ? core::FieldInvalid("raft_address",
                               "want HOST:PORT, the address its peers reach "
                               "its Raft on")
          : core::Status();
  return ChangeMembers(
      ctx, request->id(), invalid, [request, response](GroupAdmin* group,
                                                       auto done) {
        group->AddMember(request->id(), request->raft_address(),
                         response->mutable_cluster(), std::move(done));
      });
}

grpc::ServerUnaryReactor* AdminService::RemoveMember(
    grpc::CallbackServerContext* ctx, const v1::RemoveMemberRequest* request,
    v1::RemoveMemberResponse* response) {
  return ChangeMembers(
      ctx, request->id(), core::Status(),
      [request, response](GroupAdmin* group, auto done) {
        group->RemoveMember(request->id(), response->mutable_cluster(),
                            std::move(done));
      });
}

}  // namespace dogpiled::service
