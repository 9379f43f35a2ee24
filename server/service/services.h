// The gRPC services. Handlers only translate: build the core request, make
// one core call, map the result. Thread-safe: gRPC calls them from its own
// threads; all state lives in the Coordinator the CoreSource hands out (in
// replicated mode: the leader's, and answers wait for the commit).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/coordinator.h"
#include "core/journal.h"
#include "service/auth.h"
#include "service/core_source.h"
#include "service/response_budget.h"
#include "dogpiled/v1/admin.grpc.pb.h"
#include "dogpiled/v1/dogpile.grpc.pb.h"
#include "dogpiled/v1/rwmutex.grpc.pb.h"
#include "dogpiled/v1/sessions.grpc.pb.h"

namespace dogpiled::service {

namespace v1 = ::dogpiled::v1;

class SessionsService final : public v1::Sessions::CallbackService {
 public:
  // The serving near-cache tracker (if any) learns which watch each
  // KeepAlive names.
  SessionsService(const CoreSource* cores, const Auth* auth)
      : cores_(cores), auth_(auth) {}
  grpc::ServerUnaryReactor* Open(grpc::CallbackServerContext* ctx,
                                 const v1::OpenRequest* request,
                                 v1::OpenResponse* response) override;
  grpc::ServerBidiReactor<v1::KeepAliveRequest, v1::KeepAliveResponse>*
  KeepAlive(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Close(grpc::CallbackServerContext* ctx,
                                  const v1::CloseRequest* request,
                                  v1::CloseResponse* response) override;

 private:
  const CoreSource* const cores_;
  const Auth* const auth_;
};

class DogpileService final : public v1::Dogpile::CallbackService {
 public:
  // `budget` (may be null: unbounded) bounds the value bytes of answers
  // waiting on their readers. `durability`, when set, holds back the
  // answers of Publish and Invalidate until their records are as durable
  // as the policy promises. Watch is served by the serving near-cache
  // tracker (refused without one); Publish and Invalidate are answered
  // once the near-caches holding the key have dropped it.
  DogpileService(const CoreSource* cores, const Auth* auth,
                 ResponseBudget* budget = nullptr,
                 core::DurabilityBarrier* durability = nullptr)
      : cores_(cores), auth_(auth), budget_(budget), durability_(durability) {}
  grpc::ServerUnaryReactor* Acquire(grpc::CallbackServerContext* ctx,
                                    const v1::AcquireRequest* request,
                                    v1::AcquireResponse* response) override;
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* ctx,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override;
  grpc::ServerUnaryReactor* Abandon(grpc::CallbackServerContext* ctx,
                                    const v1::AbandonRequest* request,
                                    v1::AbandonResponse* response) override;
  grpc::ServerUnaryReactor* Invalidate(
      grpc::CallbackServerContext* ctx, const v1::InvalidateRequest* request,
      v1::InvalidateResponse* response) override;
  grpc::ServerUnaryReactor* Peek(grpc::CallbackServerContext* ctx,
                                 const v1::PeekRequest* request,
                                 v1::PeekResponse* response) override;
  // watch_service.cc
  grpc::ServerBidiReactor<v1::WatchRequest, v1::WatchEvent>* Watch(
      grpc::CallbackServerContext* ctx) override;

 private:
  // Finishes the call with OK once the near-caches holding what changed
  // have dropped it (`acks`, may be null) and what the core journaled is
  // durable; else with the first failure (UNAVAILABLE). `on_ok` fills the
  // answer first.
  grpc::ServerUnaryReactor* FinishWhenDurable(
      grpc::CallbackServerContext* ctx, const Serving& serving,
      std::function<void()> on_ok, core::AckWaitPtr acks = nullptr);

  const CoreSource* const cores_;
  const Auth* const auth_;
  ResponseBudget* const budget_;
  core::DurabilityBarrier* const durability_;
};

class RWMutexService final : public v1::RWMutex::CallbackService {
 public:
  RWMutexService(const CoreSource* cores, const Auth* auth)
      : cores_(cores), auth_(auth) {}
  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* ctx,
                                 const v1::LockRequest* request,
                                 v1::LockResponse* response) override;
  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* ctx,
                                   const v1::UnlockRequest* request,
                                   v1::UnlockResponse* response) override;

 private:
  const CoreSource* const cores_;
  const Auth* const auth_;
};

// A replicated group's own calls (Admin.Cluster, AddMember, RemoveMember),
// as its member (daemon::Replica) answers them. Thread-safe.
class GroupAdmin {
 public:
  virtual ~GroupAdmin() = default;
  virtual core::Status Describe(v1::ClusterResponse* out) = 0;
  // `done` runs once, on any thread, when the change is committed (`out`
  // then holds the group as it is) or refused. The caller checked the id
  // and address, and keeps `out` until `done`.
  virtual void AddMember(uint64_t id, std::string raft_address,
                         v1::ClusterResponse* out,
                         std::function<void(core::Status)> done) = 0;
  virtual void RemoveMember(uint64_t id, v1::ClusterResponse* out,
                            std::function<void(core::Status)> done) = 0;
};

class AdminService final : public v1::Admin::CallbackService {
 public:
  // `replicated`: the group's calls are answered once AttachGroup is
  // called (UNAVAILABLE before); otherwise they are NOT_REPLICATED.
  AdminService(const CoreSource* cores, const Auth* auth,
               bool replicated = false)
      : cores_(cores), auth_(auth), replicated_(replicated) {}
  // Once, when the group's member is running (it outlives the service).
  void AttachGroup(GroupAdmin* group) { group_.store(group); }

  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx,
                                  const v1::StatsRequest* request,
                                  v1::StatsResponse* response) override;
  grpc::ServerUnaryReactor* Cluster(grpc::CallbackServerContext* ctx,
                                    const v1::ClusterRequest* request,
                                    v1::ClusterResponse* response) override;
  grpc::ServerUnaryReactor* AddMember(
      grpc::CallbackServerContext* ctx, const v1::AddMemberRequest* request,
      v1::AddMemberResponse* response) override;
  grpc::ServerUnaryReactor* RemoveMember(
      grpc::CallbackServerContext* ctx, const v1::RemoveMemberRequest* request,
      v1::RemoveMemberResponse* response) override;

 private:
  // The group, or why the call is refused (admin check included).
  GroupAdmin* Group(grpc::CallbackServerContext* ctx,
                    grpc::Status* refused) const;
  // AddMember and RemoveMember: the checks they share, then `change` with
  // the group and what answers the call.
  using MemberChange = std::function<void(
      GroupAdmin*, std::function<void(core::Status)> done)>;
  grpc::ServerUnaryReactor* ChangeMembers(grpc::CallbackServerContext* ctx,
                                          uint64_t id,
                                          const core::Status& invalid,
                                          const MemberChange& change);

  const CoreSource* const cores_;
  const Auth* const auth_;
  const bool replicated_;
  std::atomic<GroupAdmin*> group_{nullptr};
};

// Answers a unary call with `status` once what it depends on is committed
// (at once on a single node): an error of the core's may rest on state
// another call changed and has not committed yet.
inline grpc::ServerUnaryReactor* FinishCommitted(
    grpc::CallbackServerContext* ctx, const Serving& serving,
    const core::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (serving.commit == nullptr) {
    reactor->Finish(ToGrpc(status));
    return reactor;
  }
  serving.commit->AfterDurable([reactor, status](core::Status s) {
    reactor->Finish(ToGrpc(s.ok() ? status : s));
  });
  return reactor;
}

// Answers a unary call at once with `status`.
inline grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx,
                                           const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace dogpiled::service
