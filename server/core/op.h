// Coordinator::Op, the lock scope of every public Coordinator call. Private
// to the core's .cc files.
#pragma once

#include <functional>
#include <vector>

#include "core/coordinator.h"

namespace dogpiled::core {

// Holds the lock for one public call. On the way in it first expires what
// is due (so a call never sees a lease, creator role or wait whose deadline
// has passed, even when the timer thread is late); on the way out it
// releases the lock and only then runs the deferred callbacks and the
// deadline hook.
class DP_SCOPED_CAPABILITY Coordinator::Op {
 public:
  explicit Op(Coordinator* c) DP_ACQUIRE(c->mu_) : c_(c) {
    c_->mu_.Lock();
    c_->FireDue();
  }
  ~Op() DP_RELEASE() {
    std::vector<std::function<void()>> run;
    run.swap(c_->deferred_);
    std::function<void()> hook;
    if (c_->deadline_moved_) {
      c_->deadline_moved_ = false;
      hook = c_->deadline_hook_;
    }
    c_->mu_.Unlock();
    for (auto& fn : run) {
      fn();
    }
    if (c_->near_cache_ != nullptr) {
      c_->near_cache_->Flush();  // wake-ups and acks queued under the lock
    }
    if (hook) {
      hook();
    }
  }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

 private:
  Coordinator* c_;
};

}  // namespace dogpiled::core
