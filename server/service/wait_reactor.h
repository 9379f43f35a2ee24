// A unary call that may park in the core. If the client cancels (or its
// deadline passes) while parked, the call leaves its line at once; the core
// then answers it CANCELLED, so Finish is still called exactly once, by the
// core's callback.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>

#include "core/coordinator.h"

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

 private:
  core::Coordinator* const core_;
  std::atomic<uint64_t> wait_id_{0};
};

}  // namespace dogpiled::service
