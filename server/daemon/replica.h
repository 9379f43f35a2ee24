// A member of a replicated group (docs/replication.md): a RaftNode, and,
// while this member leads, a Coordinator restored from the committed state
// that serves clients through the CoreSource.
//
// Taking the lead: the new leader proposes its announcement (its id and
// client address) as its term's first entry; once that is committed and
// applied, every entry of earlier terms is too (the barrier rule), so the
// applied state is final: a fresh Coordinator restores it (sessions with one
// TTL of grace, held grants, values, marks, tokens above the high-water
// mark) and starts serving with a ReplicatedJournal. Losing the lead: the
// CoreSource refuses, the journal answers its waiters NOT_LEADER, and the
// Coordinator is shut down (parked calls are answered UNAVAILABLE).
//
// Threads: Raft callbacks run on the RaftNode's loop thread and hand
// promotions and demotions to the io_context thread, in order; the
// io_context thread builds and tears down Coordinators.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/coordinator.h"
#include "daemon/config.h"
#include "daemon/deadline_timer.h"
#include "replication/raft_node.h"
#include "replication/replicated_journal.h"
#include "service/core_source.h"
#include "service/services.h"
#include "dogpiled/v1/admin.pb.h"

namespace dogpiled::daemon {

// Parses --peers: "ID=HOST:PORT,..." (ids positive and distinct).
core::StatusOr<std::vector<std::pair<uint64_t, std::string>>> ParsePeers(
    const std::string& text);

// What followers tell clients to dial when this member leads: --listen's
// host with the bound port (a wildcard host becomes this host's name).
std::string AdvertisedAddress(const std::string& listen, int port);

struct ReplicaOptions {
  replication::RaftNodeOptions raft;  // the hooks are the Replica's own
  std::string client_address;        // what followers name to clients
  // For each term's Coordinator; journal and near_cache are the Replica's
  // (one of each per term), the deadline hook its own.
  core::CoordinatorOptions core;
};

class Replica;

// The replicated start-up, from the daemon's flags. First the checks of
// --peers, --node-id and --state-dir (an error names the flag at fault),
// giving this member's options but for `core` and `client_address`.
core::StatusOr<ReplicaOptions> ReplicaOptionsFrom(const Config& config);
// Then, once the client port is bound: the member, started; null once
// what failed is logged.
std::unique_ptr<Replica> StartReplica(ReplicaOptions options,
                                      const Config& config, int port,
                                      asio::io_context& io,
                                      service::CoreSource* cores);

class Replica final : public service::GroupAdmin {
 public:
  Replica(ReplicaOptions options, asio::io_context& io,
          service::CoreSource* cores);
  ~Replica();  // Stop()

  std::string Start();  // "" or what failed
  // On the io_context thread, once: stops serving (shutting down) and
  // stops Raft.
  void Stop();

  // Admin.Cluster: the group as this member sees it.
  core::Status Describe(v1::ClusterResponse* out) override;
  // Admin.AddMember and RemoveMember (a removal of this member, the
  // leader, hands the lead over and answers NOT_LEADER naming the new one).
  void AddMember(uint64_t id, std::string raft_address,
                 v1::ClusterResponse* out,
                 std::function<void(core::Status)> done) override;
  void RemoveMember(uint64_t id, v1::ClusterResponse* out,
                    std::function<void(core::Status)> done) override;

 private:
  struct Term {
    uint64_t term = 0;
    std::shared_ptr<replication::ReplicatedJournal> journal;
    std::shared_ptr<core::Coordinator> core;
    std::shared_ptr<core::NearCacheTracker> near_cache;
    DeadlineTimer* timer = nullptr;  // in timers_
  };
  // Reads wait once the lead was last confirmed longer ago than a few
  // checks (ReplicatedJournal): after a stop or a starved loop, until it is
  // confirmed again.
  int64_t LeaseMs() const {
    return 5 * static_cast<int64_t>(options_.raft.lead_check_ms);
  }
  // Loop thread.
  void OnLeadership(bool leading, uint64_t term);
  void OnCheck(uint64_t leader, const replication::CommittedState& state,
               bool periodic);
  // io_context thread.
  void Promote(uint64_t term, core::PersistedState state,
               std::shared_ptr<replication::ReplicatedJournal> journal);
  void Demote(uint64_t term, const core::Status& why);
  // Loop thread: the answer to a membership change, and the group.
  core::Status ChangeStatus(int rv, uint64_t id, uint64_t leader) const;
  void Fill(const replication::GroupView& view, v1::ClusterResponse* out);

  const ReplicaOptions options_;
  asio::io_context& io_;
  service::CoreSource* const cores_;
  replication::RaftNode node_;

  // The term this member leads (0: none): set on the loop thread, read by
  // a promotion on the io_context thread to drop one that came too late.
  std::atomic<uint64_t> leading_term_{0};
  // The loop thread's: the journal of the term it leads, and the leader and
  // address the refusal last named.
  std::shared_ptr<replication::ReplicatedJournal> lead_journal_;
  int64_t last_check_ms_ = 0;  // steady clock, of the last periodic check
  uint64_t hint_leader_ = 0;
  std::string hint_address_;

  // The io_context thread's.
  Term serving_;
  // Deposed terms' timers: inert once stopped, kept until the io_context
  // has stopped (its queued wake-ups point at them).
  std::vector<std::unique_ptr<DeadlineTimer>> timers_;
  bool stopped_ = false;

  mutable std::mutex mu_;  // guards serving_term_, for Describe
  uint64_t serving_term_ = 0;
};

}  // namespace dogpiled::daemon
