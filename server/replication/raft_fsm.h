// The Raft state machine of replicated mode (libraft's raft_fsm): applies
// committed entries, each the records of one call (daemon/record_io.h), to
// a CommittedState; snapshots are the same records for a whole state. It
// runs on the Raft loop's thread only, like every raft callback.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include "replication/committed_state.h"
#include "replication/raft.h"

namespace dogpiled::replication {

class ReplicaFsm {
 public:
  explicit ReplicaFsm(CommittedState* state);
  ReplicaFsm(const ReplicaFsm&) = delete;
  ReplicaFsm& operator=(const ReplicaFsm&) = delete;

  raft_fsm* fsm() { return &fsm_; }
  // Called after each entry or snapshot is applied (on the loop thread).
  void SetAfterApply(std::function<void()> hook) {
    after_apply_ = std::move(hook);
  }
  CommittedState& state() { return *state_; }
  uint64_t applied() const { return applied_; }
  // Entries that were not whole, valid records. Raft gives an apply error
  // no meaning (the entry is applied again), so one is skipped and counted:
  // the leader never proposes one, so a non-zero count is a bug to alarm on.
  uint64_t bad_entries() const { return bad_entries_; }
  uint64_t restores() const { return restores_; }  // snapshots installed

 private:
  static int Apply(raft_fsm* fsm, const raft_buffer* buf, void** result);
  static int Snapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs);
  static int Restore(raft_fsm* fsm, raft_buffer* buf);

  raft_fsm fsm_{};
  CommittedState* state_;
  std::function<void()> after_apply_;
  uint64_t applied_ = 0;
  uint64_t bad_entries_ = 0;
  uint64_t restores_ = 0;
};

}  // namespace dogpiled::replication
