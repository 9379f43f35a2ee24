// The leader's journal in replicated mode: what the Coordinator journals is
// proposed to the group, and answers wait until it is committed. It is the
// single node's write pipeline with "durable" meaning "committed by a
// majority": the core hands records over under its lock and returns; the
// records that queue up meanwhile go out as one log entry (group commit);
// AfterDurable answers once every record journaled before it is committed.
//
// One journal serves one term of leadership. When the lead is lost, Depose
// answers every waiter UNAVAILABLE (NOT_LEADER): their records may still
// commit, which is why clients retry with their request_id.
//
// Reads: an answer that changed nothing waits for nothing, unless the lead
// was last confirmed longer than `lease_ms` ago (Confirm, from the Raft
// loop while libraft still calls this member leader, which it stops doing
// once a majority has been out of touch for an election timeout). Then it
// waits for the next confirmation: a leader that was stopped or starved
// past its deposition never answers a read from its old state when it
// resumes, however quickly its gRPC threads run.
//
// Thread-safety: Journal methods are called under the core's lock;
// AfterDurable, Health and Depose from any thread. Proposals go out on the
// Raft loop's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/journal.h"
#include "daemon/record_io.h"
#include "replication/raft_node.h"

namespace dogpiled::replication {

class ReplicatedJournal final
    : public core::Journal,
      public core::DurabilityBarrier,
      public std::enable_shared_from_this<ReplicatedJournal> {
 public:
  // `node` outlives the journal's proposals (RaftNode::Stop answers them).
  ReplicatedJournal(RaftNode* node, int64_t lease_ms)
      : node_(node), lease_ms_(lease_ms) {}

  // core::Journal
  void ValueStored(const core::PersistedValue& value) override;
  void ValueDropped(const std::string& registry,
                    const std::string& key) override;
  void Invalidated(const core::PersistedInvalidation& inv) override;
  void SessionOpened(const core::PersistedSession& session) override;
  void SessionEnded(core::SessionId id) override;
  void Granted(const core::PersistedGrant& grant) override;
  void Released(const core::PersistedRelease& release) override;
  void SessionWatching(core::SessionId id) override;

  // core::DurabilityBarrier
  core::Status Health() const override;
  void AfterDurable(std::function<void(core::Status)> done) override;

  // The lead is lost: every waiter, now and later, gets `why`.
  void Depose(const core::Status& why);
  // The Raft loop still sees this member lead: reads may be answered
  // `lease_ms` from now, and those waiting for this are.
  void Confirm();

  uint64_t entries_proposed() const;

 private:
  using Waiter = std::pair<uint64_t, std::function<void(core::Status)>>;
  // Under mu_: counts the record just encoded and makes sure a flush is on
  // its way to the loop thread.
  void Added();
  void Flush();  // on the loop thread: proposes what has queued up
  void Committed(uint64_t upto, bool ok);
  std::vector<Waiter> TakeWaiters(uint64_t upto);

  static int64_t NowMs();

  RaftNode* const node_;
  const int64_t lease_ms_;
  mutable std::mutex mu_;
  int64_t confirmed_ms_ = 0;  // steady clock
  std::vector<std::function<void(core::Status)>> lease_waiters_;
  daemon::RecordEncoder pending_;
  uint64_t appended_ = 0;   // records handed over so far
  uint64_t committed_ = 0;  // of those, committed (a prefix)
  bool flush_posted_ = false;
  uint64_t entries_ = 0;
  std::vector<Waiter> waiters_;  // by the record count they wait for
  core::Status failure_;         // once deposed
};

}  // namespace dogpiled::replication
