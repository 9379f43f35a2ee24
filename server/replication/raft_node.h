// One member of a replicated group: libraft on its own libuv loop thread,
// with libraft's TCP transport and on-disk log under `dir`, applying
// committed entries to a CommittedState through ReplicaFsm.
//
// Threads: every raft call and callback runs on the loop thread (libraft's
// rule). Other threads only queue work for it (Propose, Run) and wake it
// with uv_async_send.
#pragma once

#include <uv.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "replication/committed_state.h"
#include "replication/peer_transport.h"
#include "replication/raft.h"
#include "replication/raft_fsm.h"

namespace dogpiled::replication {

struct RaftNodeOptions {
  raft_id id = 0;
  std::string address;  // this node's HOST:PORT for its peers
  // Every member, this one included: id and HOST:PORT. Used once, to
  // bootstrap a pristine `dir`; afterwards the log holds the membership.
  std::vector<std::pair<raft_id, std::string>> members;
  std::string dir;  // must exist
  // A pristine `dir` is not bootstrapped from `members`: this member waits
  // for a running group's leader to add it (RaftNode::AddVoter there).
  bool join = false;
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_timeout_ms = 100;
  unsigned invalidation_horizon_ms = 3'600'000;
  // Called on the loop thread whenever this member starts or stops leading
  // (a new term of leadership counts as a change), checked every
  // `lead_check_ms`. Set before Start.
  std::function<void(bool leading, uint64_t term)> on_leadership;
  // Called on the loop thread after each check and each applied entry,
  // with the leader this member knows of (0: none) and the applied state
  // (to name the leader's client address). Set before Start.
  // `periodic`: from the check (else after an apply).
  std::function<void(raft_id leader, const CommittedState& state,
                     bool periodic)>
      on_check;
  unsigned lead_check_ms = 10;
};

// What a member knows of its group, for Admin.Cluster.
struct GroupView {
  struct Member {
    raft_id id = 0;
    std::string raft_address;
    std::string client_address;  // as it announced when it led ("": never)
    bool voter = true;  // false while an added member catches up
  };
  std::vector<Member> members;  // the current configuration, by id
  raft_id self = 0;
  raft_id leader = 0;  // 0: none known
  bool leading = false;
  bool candidate = false;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
};

class RaftNode {
 public:
  explicit RaftNode(RaftNodeOptions options);
  ~RaftNode();  // Stop()
  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;

  // Opens the log (bootstrapping a pristine one), starts the loop thread.
  // An error message, or "" on success.
  std::string Start();
  // Closes raft and the loop; idempotent. The state stays readable.
  void Stop();

  // From any thread: proposes one entry. `done(true)` once it is committed
  // and applied here; `done(false)` if this node does not lead or lost the
  // lead before the commit (the entry may still commit: the state machine
  // must take a retry for what it is). `done` runs on the loop thread.
  void Propose(std::string entry, std::function<void(bool)> done);
  // From any thread: runs `fn` on the loop thread and waits for it, so it
  // may read raft and the state. False if the node is not running.
  bool Run(const std::function<void(raft&, CommittedState&)>& fn);
  // From any thread: runs `fn` on the loop thread later, without waiting
  // (dropped if the node is not running).
  void Post(std::function<void()> fn);
  // From any thread (waits for the loop): the group as this member sees
  // it; nullopt if the node is not running.
  std::optional<GroupView> View();
  // The same, on the loop thread (a Propose's or a change's done).
  GroupView ViewOnLoop();

  // Membership changes, one at a time (libraft's rule), from any thread.
  // `done` runs on the loop thread with 0 or a libraft error code, and the
  // leader this member knows of then: RAFT_NOTLEADER, RAFT_CANTCHANGE
  // (another change is under way), RAFT_SHUTDOWN (the node stopped first),
  // and those below.
  //
  // Makes `id` at `address` a voter: added as a spare, caught up (it must
  // be running, started to join), then given its vote; an add that stopped
  // half-way is finished, one already done answers 0. RAFT_DUPLICATEID:
  // `id` is a member at another address; RAFT_DUPLICATEADDRESS: another
  // member has `address`; RAFT_NOCONNECTION: it did not catch up (it stays
  // a spare: add it again, or remove it).
  void AddVoter(raft_id id, std::string address,
                std::function<void(int, raft_id)> done);
  // Removes `id` from the group: RAFT_NOTFOUND if it is not a member,
  // RAFT_BADID if it is this member (hand the lead over first),
  // RAFT_BADROLE if it is the only voter.
  void RemoveMember(raft_id id, std::function<void(int, raft_id)> done);
  // Hands this member's lead to the most up-to-date voter: 0 once that one
  // leads, RAFT_LEADERSHIPLOST if none took it within an election timeout,
  // RAFT_BADROLE if this member is the only voter.
  void TransferLead(std::function<void(int, raft_id)> done);

  raft_id id() const { return options_.id; }
  // The applied state, for callbacks that run on the loop thread only
  // (a Propose's done, the hooks).
  const CommittedState& state_on_loop() const { return state_; }

 private:
  struct Proposal {
    std::string entry;
    std::function<void(bool)> done;
  };
  void Loop();
  void Drain();  // on the loop: queued proposals and calls
  void CheckLeadership();  // on the loop, every lead_check_ms
  void ForgetSilentLeader();  // on the loop, from CheckLeadership
  void OnPeerClosed(raft_id id);  // on the loop, from the transport
  // Membership changes: queued from any thread, started (and each next
  // step taken) on the loop.
  enum ChangeKind { kAddVoter, kRemove, kTransferLead };
  struct Change;
  void QueueChange(ChangeKind kind, raft_id id, std::string address,
                   std::function<void(int, raft_id)> done);
  void StartChange(const std::shared_ptr<Change>& change);
  raft_id LeaderOnLoop();
  unsigned Voters() const;  // on the loop
  void ReportLeader(bool periodic);  // on the loop: on_check

  const RaftNodeOptions options_;
  CommittedState state_;
  ReplicaFsm fsm_{&state_};

  uv_loop_t loop_{};
  uv_async_t wake_{};
  uv_timer_t lead_timer_{};
  bool leading_ = false;  // as last reported to on_leadership
  bool closing_ = false;  // the loop's: raft and the handles are closing
  std::shared_ptr<Change> change_;  // the loop's: the one under way
  uint64_t lead_term_ = 0;
  PeerTransport transport_{};
  raft_io io_{};
  raft raft_{};
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;
  bool stopping_ = false;
  std::deque<Proposal> proposals_;
  std::deque<std::function<void()>> calls_;
};

}  // namespace dogpiled::replication
