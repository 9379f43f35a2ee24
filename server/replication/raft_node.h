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
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "replication/committed_state.h"
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
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_timeout_ms = 100;
  unsigned invalidation_horizon_ms = 3'600'000;
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

  raft_id id() const { return options_.id; }

 private:
  struct Proposal {
    std::string entry;
    std::function<void(bool)> done;
  };
  void Loop();
  void Drain();  // on the loop: queued proposals and calls

  const RaftNodeOptions options_;
  CommittedState state_;
  ReplicaFsm fsm_{&state_};

  uv_loop_t loop_{};
  uv_async_t wake_{};
  raft_uv_transport transport_{};
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
