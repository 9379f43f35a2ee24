// Which Coordinator answers a call. A single node has one for its whole
// life. In replicated mode only the leader has one, from the moment it has
// taken over the committed state until it loses the lead; every other
// moment a call is refused UNAVAILABLE (NOT_LEADER, naming the leader when
// it is known), and every answer waits until what it depends on is
// committed (docs/replication.md).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <utility>

#include "core/coordinator.h"
#include "core/journal.h"
#include "core/near_cache.h"
#include "service/status_map.h"

namespace dogpiled::service {

struct Serving {
  std::shared_ptr<core::Coordinator> core;
  // Replicated mode: answers go out only once everything journaled before
  // was committed (AfterDurable). Null on a single node.
  std::shared_ptr<core::DurabilityBarrier> commit;
  // The near-cache tracker the Coordinator was given (null: none, and Watch
  // is refused). A replicated leader has one per term.
  std::shared_ptr<core::NearCacheTracker> near_cache;
};

class CoreSource {
 public:
  // A single node: `core` answers every call and nothing waits to commit.
  // The pointer carries no count (an empty owner), so handing it out costs
  // a single node nothing.
  CoreSource(core::Coordinator* core, core::NearCacheTracker* near_cache)
      : fixed_{std::shared_ptr<core::Coordinator>(
                   std::shared_ptr<core::Coordinator>(), core),
               nullptr,
               std::shared_ptr<core::NearCacheTracker>(
                   std::shared_ptr<core::NearCacheTracker>(), near_cache)} {}
  // Replicated mode: refuses with `why` until Serve().
  explicit CoreSource(core::Status why) : refusal_(std::move(why)) {}

  void Serve(Serving serving) {
    std::lock_guard lock(mu_);
    serving_ = std::move(serving);
  }
  // Stops serving; later calls are refused with `why`. Calls that hold the
  // old Coordinator finish on it (it is shut down by its owner).
  void Refuse(core::Status why) {
    std::lock_guard lock(mu_);
    serving_ = {};
    refusal_ = std::move(why);
  }

  // True and `*out` set, or false and `*refusal` set.
  bool Get(Serving* out, grpc::Status* refusal) const {
    if (fixed_.core != nullptr) {
      *out = fixed_;
      return true;
    }
    std::lock_guard lock(mu_);
    if (serving_.core != nullptr) {
      *out = serving_;
      return true;
    }
    *refusal = ToGrpc(refusal_);
    return false;
  }

 private:
  const Serving fixed_;
  mutable std::mutex mu_;
  Serving serving_;
  core::Status refusal_;
};

// Runs `finish(status)` once everything `serving` journaled so far is
// committed (at once on a single node), or with the failure if it never
// will be.
inline void AfterCommit(const Serving& serving,
                        std::function<void(core::Status)> finish) {
  if (serving.commit == nullptr) {
    finish(core::Status());
    return;
  }
  serving.commit->AfterDurable(std::move(finish));
}

}  // namespace dogpiled::service
