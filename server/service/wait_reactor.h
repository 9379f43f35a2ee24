// A unary call that may park in the core. If the client cancels (or its
// deadline passes) while parked, the call leaves its line at once; the core
// then answers it CANCELLED, so Finish is still called exactly once, by the
// core's callback.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>

#include "core/coordinator.h"
#include "service/response_budget.h"

namespace dogpiled::service {

class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit WaitReactor(core::Coordinator* core) : core_(core) {}

  // Called by the handler before it returns the reactor to gRPC, which is
  // before any OnCancel can be delivered.
  void SetWaitId(uint64_t wait_id) { wait_id_.store(wait_id); }

  void OnCancel() override {
    if (uint64_t id = wait_id_.load(); id != 0) {
      core_->CancelWait(id);
    }
  }
  void OnDone() override { delete this; }

  // gRPC runs the OnDone of a reactor that is not "inlineable" on its
  // executor thread: one more thread wake-up and about 8 us of CPU per call
  // (bench/, scenario 2). A call the core answered at once (wait id 0) has
  // nothing to cancel and an OnDone that only deletes, so it runs inline, as
  // gRPC's own DefaultReactor does. InternalInlineable is gRPC's hook for
  // this, marked "not API": an upgrade that drops it fails to compile here.
  bool InternalInlineable() override { return wait_id_.load() == 0; }

  // Held until OnDone: the answer's share of the response budget.
  Reservation& reservation() { return reservation_; }

 private:
  Reservation reservation_;
  core::Coordinator* const core_;
  std::atomic<uint64_t> wait_id_{0};
};

}  // namespace dogpiled::service
