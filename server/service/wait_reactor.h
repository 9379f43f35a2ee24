// A unary call that may park in the core. If the client cancels (or its
// deadline passes) while parked, the call leaves its line at once; the core
// then answers it CANCELLED, so Finish is still called exactly once, by the
// core's callback.
//
// A grant (a CREATE, or a lock) is noted before its answer is sent. If the
// call then turns out cancelled (the client went away, or its deadline
// fired as the grant was made), the answer never reached anyone, and OnDone
// releases the grant so nobody holds one it does not know of.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "core/coordinator.h"
#include "service/core_source.h"
#include "service/response_budget.h"
#include "service/status_map.h"

namespace dogpiled::service {

// How long a call may park: its wait_timeout_ms, but not past the call's
// own gRPC deadline, after which its client has given up and would never
// read a grant (the core never grants to a waiter whose wait ran out).
// Zero (a try) and invalid waits are left to the core.
inline int64_t WaitWithinDeadline(const grpc::CallbackServerContext* ctx,
                                  int64_t wait_ms) {
  const auto deadline = ctx->deadline();
  if (wait_ms <= 0 || deadline == std::chrono::system_clock::time_point::max()) {
    return wait_ms;
  }
  const int64_t left = std::chrono::ceil<std::chrono::milliseconds>(
                           deadline - std::chrono::system_clock::now())
                           .count();
  return std::clamp<int64_t>(left, 1, wait_ms);
}

class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  // Holds `core` until done: in replicated mode a deposed leader's
  // Coordinator outlives the calls it still answers.
  WaitReactor(std::shared_ptr<core::Coordinator> core,
              grpc::CallbackServerContext* ctx)
      : core_(std::move(core)), ctx_(ctx) {}

  // Called by the handler before it returns the reactor to gRPC, which is
  // before any OnCancel can be delivered.
  void SetWaitId(uint64_t wait_id) { wait_id_.store(wait_id); }

  // Called with the answer, before Finish, when it carries a grant.
  void NoteGrant(const std::string& registry, const std::string& key,
                 core::SessionId session, core::Token token, bool is_lock) {
    registry_ = registry;
    key_ = key;
    session_ = session;
    token_ = token;
    is_lock_ = is_lock;
    granted_.store(true);
  }

  void OnCancel() override {
    if (uint64_t id = wait_id_.load(); id != 0) {
      core_->CancelWait(id);
    }
  }
  void OnDone() override {
    if (granted_.load() && ctx_->IsCancelled()) {
      core_->ReleaseUndelivered(registry_, key_, session_, token_, is_lock_);
    }
    delete this;
  }

  // gRPC runs the OnDone of a reactor that is not "inlineable" on its
  // executor thread: one more thread wake-up and about 8 us of CPU per call
  // (bench/, scenario 2). A call the core answered at once (wait id 0) with
  // no grant has nothing to cancel or release and an OnDone that only
  // deletes, so it runs inline, as gRPC's own DefaultReactor does.
  // InternalInlineable is gRPC's hook for this, marked "not API": an
  // upgrade that drops it fails to compile here.
  bool InternalInlineable() override {
    return wait_id_.load() == 0 && !granted_.load();
  }

  // Held until OnDone: the answer's share of the response budget.
  Reservation& reservation() { return reservation_; }

 private:
  Reservation reservation_;
  const std::shared_ptr<core::Coordinator> core_;
  grpc::CallbackServerContext* const ctx_;
  std::atomic<uint64_t> wait_id_{0};
  std::atomic<bool> granted_{false};
  std::string registry_;
  std::string key_;
  core::SessionId session_ = 0;
  core::Token token_ = 0;
  bool is_lock_ = false;
};

// The core's callback for a call that may park: hands the result to
// `deliver` once what the call depends on is committed (at once on a single
// node), or finishes it with the failure if it never will be.
template <typename Result, typename Deliver>
auto DeliverWhenCommitted(Serving serving, WaitReactor* reactor,
                          Deliver deliver) {
  return [serving = std::move(serving), reactor,
          deliver = std::move(deliver)](core::StatusOr<Result> result) mutable {
    if (serving.commit == nullptr) {
      deliver(std::move(result));
      return;
    }
    serving.commit->AfterDurable(
        [reactor, deliver, result = std::move(result)](core::Status s) {
          if (!s.ok()) {
            reactor->Finish(ToGrpc(s));
            return;
          }
          deliver(result);
        });
  };
}

}  // namespace dogpiled::service
