#include "replication/raft_node.h"

#include <csignal>
#include <cstring>
#include <algorithm>
#include <future>

#include "daemon/record_io.h"

namespace dogpiled::replication {
namespace {

// One proposal in flight: libraft's request and what to call back.
struct ApplyRequest {
  struct raft_apply req {};
  std::function<void(bool)> done;
};

}  // namespace

RaftNode::RaftNode(RaftNodeOptions options)
    : options_(std::move(options)),
      state_(options_.invalidation_horizon_ms) {}

RaftNode::~RaftNode() { Stop(); }

std::string RaftNode::Start() {
  // libraft writes to peers with plain write(2): a peer that went away must
  // cost that connection, not the process.
  signal(SIGPIPE, SIG_IGN);
  closing_ = false;
  leading_ = false;
  lead_term_ = 0;
  if (int rv = uv_loop_init(&loop_); rv != 0) {
    return std::string("uv_loop_init: ") + uv_strerror(rv);
  }
  auto fail = [this](const std::string& what, int rv) {
    uv_loop_close(&loop_);
    return what + ": " + raft_strerror(rv);
  };
  transport_ = PeerTransport{};
  transport_.context = this;
  transport_.peer_closed = [](void* self, raft_id id) {
    static_cast<RaftNode*>(self)->OnPeerClosed(id);
  };
  if (int rv = PeerTcpInit(&transport_, &loop_); rv != 0) {
    return fail("raft_uv_tcp_init", rv);
  }
  if (int rv = raft_uv_init(&io_, &loop_, options_.dir.c_str(),
                            &transport_.base);
      rv != 0) {
    return fail("raft_uv_init " + options_.dir + " (" + io_.errmsg + ")",
                rv);
  }
  // A damaged segment is an operator's decision, never moved aside
  // silently (replication-notes.md).
  raft_uv_set_auto_recovery(&io_, false);
  // A peer back from a restart is dialled again within a heartbeat, not
  // libraft's second: what waits for it is often a vote.
  raft_uv_set_connect_retry_delay(&io_, options_.heartbeat_timeout_ms);
  if (int rv = raft_init(&raft_, &io_, fsm_.fsm(), options_.id,
                         options_.address.c_str());
      rv != 0) {
    return fail("raft_init", rv);
  }
  // Before raft_start: later calls only store the values.
  raft_set_election_timeout(&raft_, options_.election_timeout_ms);
  raft_set_heartbeat_timeout(&raft_, options_.heartbeat_timeout_ms);
  raft_set_pre_vote(&raft_, true);
  raft_configuration conf;
  raft_configuration_init(&conf);
  for (const auto& [id, address] : options_.members) {
    raft_configuration_add(&conf, id, address.c_str(), RAFT_VOTER);
  }
  const int boot = raft_bootstrap(&raft_, &conf);
  raft_configuration_close(&conf);
  if (boot != 0 && boot != RAFT_CANTBOOTSTRAP) {  // that: not pristine
    return fail("raft_bootstrap", boot);
  }
  fsm_.SetAfterApply([this] { ReportLeader(/*periodic=*/false); });
  wake_.data = this;
  uv_async_init(&loop_, &wake_, [](uv_async_t* handle) {
    static_cast<RaftNode*>(handle->data)->Drain();
  });
  if (int rv = raft_start(&raft_); rv != 0) {
    return fail("raft_start (" + std::string(raft_errmsg(&raft_)) + ")", rv);
  }
  lead_timer_.data = this;
  uv_timer_init(&loop_, &lead_timer_);
  uv_timer_start(
      &lead_timer_,
      [](uv_timer_t* t) { static_cast<RaftNode*>(t->data)->CheckLeadership(); },
      options_.lead_check_ms, options_.lead_check_ms);
  {
    std::lock_guard lock(mu_);
    running_ = true;
    stopping_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
  return "";
}

void RaftNode::Loop() {
  uv_run(&loop_, UV_RUN_DEFAULT);  // returns once every handle is closed
  uv_loop_close(&loop_);
}

void RaftNode::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!running_ || stopping_) {
      return;
    }
    stopping_ = true;
  }
  uv_async_send(&wake_);
  thread_.join();
  std::lock_guard lock(mu_);
  running_ = false;
  for (Proposal& p : proposals_) {
    p.done(false);
  }
  proposals_.clear();
  calls_.clear();
  cv_.notify_all();
}

void RaftNode::Propose(std::string entry, std::function<void(bool)> done) {
  daemon::PadEntry(entry);
  {
    std::lock_guard lock(mu_);
    if (!running_ || stopping_) {
      done(false);
      return;
    }
    proposals_.push_back({std::move(entry), std::move(done)});
  }
  uv_async_send(&wake_);
}

void RaftNode::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (!running_ || stopping_) {
      return;
    }
    calls_.push_back(std::move(fn));
  }
  uv_async_send(&wake_);
}

std::optional<GroupView> RaftNode::View() {
  GroupView view;
  const bool ran = Run([&view](raft& r, CommittedState& state) {
    for (unsigned i = 0; i < r.configuration.n; ++i) {
      const raft_server& server = r.configuration.servers[i];
      view.members.push_back(
          {server.id, server.address, state.ClientAddress(server.id)});
    }
    std::sort(view.members.begin(), view.members.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    view.self = r.id;
    const char* address = nullptr;
    raft_leader(&r, &view.leader, &address);
    view.leading = raft_state(&r) == RAFT_LEADER;
    view.candidate = raft_state(&r) == RAFT_CANDIDATE;
    view.term = raft_current_term(&r);
    view.commit_index = raft_commit_index(&r);
    view.applied_index = raft_last_applied(&r);
  });
  if (!ran) {
    return std::nullopt;
  }
  return view;
}

void RaftNode::ReportLeader(bool periodic) {
  if (options_.on_check) {
    raft_id leader = 0;
    const char* address = nullptr;
    raft_leader(&raft_, &leader, &address);
    options_.on_check(leader, state_, periodic);
  }
}

void RaftNode::ForgetSilentLeader() {
  // libraft 0.22 refuses every vote while a follower still names a leader,
  // and it names one until its own randomized timer expires: the survivors
  // elected at the later of their timers, not the earlier (a third of the
  // failover's p50, and a second round in its tail). The thesis (4.2.3)
  // asks only that a vote be refused within the minimum election timeout
  // of hearing from the leader, so a leader silent for most of it is
  // forgotten here; a live one is named again by its next heartbeat. Only
  // the id: libraft still sends its last answers through the address.
  if (raft_state(&raft_) != RAFT_FOLLOWER ||
      raft_.follower_state.current_leader.id == 0) {
    return;
  }
  const raft_time silent = raft_.io->time(raft_.io) - raft_.election_timer_start;
  if (silent >= options_.election_timeout_ms * 3 / 4) {
    raft_.follower_state.current_leader.id = 0;
  }
}

void RaftNode::OnPeerClosed(raft_id id) {
  if (closing_) {
    return;
  }
  const raft_server* server = nullptr;
  for (unsigned i = 0; i < raft_.configuration.n; ++i) {
    if (raft_.configuration.servers[i].id == id) {
      server = &raft_.configuration.servers[i];
    }
  }
  if (server == nullptr) {
    return;
  }
  // The message libraft's next write to this peer loses, so that no vote
  // or entry is: an answer to a vote of term 0, which every member ignores
  // (an older term's), on the dead connection, which it then redials.
  raft_message message{};
  message.type = RAFT_REQUEST_VOTE_RESULT;
  message.server_id = id;
  message.server_address = server->address;
  message.request_vote_result.term = 0;
  message.request_vote_result.vote_granted = false;
  auto* send = new raft_io_send{};
  if (io_.send(&io_, send, &message,
               [](raft_io_send* req, int) { delete req; }) != 0) {
    delete send;
  }
}

void RaftNode::CheckLeadership() {
  PeerTcpCheck(&transport_);
  ForgetSilentLeader();
  ReportLeader(/*periodic=*/true);
  const bool leading = raft_state(&raft_) == RAFT_LEADER;
  const uint64_t term = raft_current_term(&raft_);
  if (leading == leading_ && (!leading || term == lead_term_)) {
    return;
  }
  if (leading_ && leading && options_.on_leadership) {
    options_.on_leadership(false, lead_term_);  // a new term: end the old
  }
  leading_ = leading;
  lead_term_ = term;
  if (options_.on_leadership) {
    options_.on_leadership(leading, term);
  }
}

bool RaftNode::Run(const std::function<void(raft&, CommittedState&)>& fn) {
  std::promise<void> ran;
  std::future<void> done = ran.get_future();
  {
    std::lock_guard lock(mu_);
    if (!running_ || stopping_) {
      return false;
    }
    calls_.push_back([&] {
      fn(raft_, state_);
      ran.set_value();
    });
  }
  uv_async_send(&wake_);
  done.wait();
  return true;
}

void RaftNode::Drain() {
  std::deque<Proposal> proposals;
  std::deque<std::function<void()>> calls;
  bool stop = false;
  {
    std::lock_guard lock(mu_);
    calls.swap(calls_);
  }
  // Calls first: one may propose (a journal's flush), and its proposal
  // then goes out in this same pass.
  for (auto& call : calls) {
    call();
  }
  {
    std::lock_guard lock(mu_);
    proposals.swap(proposals_);
    stop = stopping_;
  }
  for (Proposal& p : proposals) {
    if (raft_state(&raft_) != RAFT_LEADER) {
      p.done(false);
      continue;
    }
    raft_buffer buf;
    buf.len = p.entry.size();
    buf.base = raft_malloc(p.entry.empty() ? 1 : p.entry.size());
    std::memcpy(buf.base, p.entry.data(), p.entry.size());
    auto* request = new ApplyRequest;
    request->done = std::move(p.done);
    request->req.data = request;
    const int rv = raft_apply(&raft_, &request->req, &buf, 1,
                              [](struct raft_apply* req, int status, void*) {
                                auto* r = static_cast<ApplyRequest*>(req->data);
                                r->done(status == 0);
                                delete r;
                              });
    if (rv != 0) {
      // Nothing was queued. libraft 0.22 has freed the buffer already (a
      // raft_free here was a double free, seen on losing the lead).
      request->done(false);
      delete request;
    }
  }
  // Once only: a wake-up sent before Stop's (a Run whose caller went on to
  // Stop while this pass ran its call) also finds `stop` set.
  if (stop && !closing_) {
    closing_ = true;
    if (leading_ && options_.on_leadership) {
      leading_ = false;
      options_.on_leadership(false, lead_term_);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&lead_timer_), nullptr);
    raft_.data = this;
    raft_close(&raft_, [](struct raft* r) {
      auto* self = static_cast<RaftNode*>(r->data);
      raft_uv_close(&self->io_);
      PeerTcpClose(&self->transport_);
      uv_close(reinterpret_cast<uv_handle_t*>(&self->wake_), nullptr);
    });
  }
}

}  // namespace dogpiled::replication
