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

const raft_server* Member(const raft& r, raft_id id) {
  for (unsigned i = 0; i < r.configuration.n; ++i) {
    if (r.configuration.servers[i].id == id) {
      return &r.configuration.servers[i];
    }
  }
  return nullptr;
}

}  // namespace

// A membership change and the answer it owes: libraft's status, and the
// leader this member knows of once it is done. One never answered (the
// node stopped before it ran, or while libraft held it) is RAFT_SHUTDOWN.
struct RaftNode::Change {
  ChangeKind kind = kAddVoter;
  raft_change req{};
  struct raft_transfer transfer {};
  raft_id id = 0;
  std::string address;  // kAddVoter's
  std::function<void(int, raft_id)> done;

  ~Change() { Answer(RAFT_SHUTDOWN, 0); }
  void Answer(int rv, raft_id leader) {
    if (done) {
      auto answer = std::move(done);
      done = nullptr;
      answer(rv, leader);
    }
  }
};

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
  if (!options_.join) {
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
  change_ = nullptr;  // one libraft never answered is RAFT_SHUTDOWN
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
  if (!Run([this, &view](raft&, CommittedState&) { view = ViewOnLoop(); })) {
    return std::nullopt;
  }
  return view;
}

GroupView RaftNode::ViewOnLoop() {
  GroupView view;
  const raft& r = raft_;
  for (unsigned i = 0; i < r.configuration.n; ++i) {
    const raft_server& server = r.configuration.servers[i];
    view.members.push_back({server.id, server.address,
                            state_.ClientAddress(server.id),
                            server.role == RAFT_VOTER});
  }
  std::sort(view.members.begin(), view.members.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  view.self = r.id;
  view.leader = LeaderOnLoop();
  view.leading = raft_state(&raft_) == RAFT_LEADER;
  view.candidate = raft_state(&raft_) == RAFT_CANDIDATE;
  view.term = raft_current_term(&raft_);
  view.commit_index = raft_commit_index(&raft_);
  view.applied_index = raft_last_applied(&raft_);
  return view;
}

void RaftNode::QueueChange(ChangeKind kind, raft_id id, std::string address,
                           std::function<void(int, raft_id)> done) {
  auto change = std::make_shared<Change>();
  change->kind = kind;
  change->id = id;
  change->address = std::move(address);
  change->done = std::move(done);
  Post([this, change] { StartChange(change); });  // dropped: ~Change answers
}

void RaftNode::AddVoter(raft_id id, std::string address,
                        std::function<void(int, raft_id)> done) {
  QueueChange(kAddVoter, id, std::move(address), std::move(done));
}

void RaftNode::RemoveMember(raft_id id,
                            std::function<void(int, raft_id)> done) {
  QueueChange(kRemove, id, "", std::move(done));
}

void RaftNode::TransferLead(std::function<void(int, raft_id)> done) {
  QueueChange(kTransferLead, 0, "", std::move(done));
}

unsigned RaftNode::Voters() const {
  unsigned n = 0;
  for (unsigned i = 0; i < raft_.configuration.n; ++i) {
    n += raft_.configuration.servers[i].role == RAFT_VOTER ? 1 : 0;
  }
  return n;
}

raft_id RaftNode::LeaderOnLoop() {
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&raft_, &id, &address);
  return id;
}

void RaftNode::StartChange(const std::shared_ptr<Change>& change) {
  if (closing_) {
    return;  // ~Change answers
  }
  // libraft asserts on a change submitted by a follower, or beside another
  // (a catch-up holds no log entry, so its own check misses that one).
  if (raft_state(&raft_) != RAFT_LEADER) {
    change->Answer(RAFT_NOTLEADER, LeaderOnLoop());
    return;
  }
  if (change_ != nullptr && change_ != change) {
    change->Answer(RAFT_CANTCHANGE, raft_.id);
    return;
  }
  const raft_server* member = Member(raft_, change->id);
  const auto on_changed = [](raft_change* req, int status) {
    auto* self = static_cast<RaftNode*>(req->data);
    std::shared_ptr<Change> done = std::move(self->change_);
    self->change_ = nullptr;
    if (status == 0 && done->kind == kAddVoter) {
      self->StartChange(done);  // added as a spare: now the vote
      return;
    }
    done->Answer(status, self->LeaderOnLoop());
  };
  change->req.data = this;
  change->transfer.data = this;
  int rv = 0;
  switch (change->kind) {
    case kAddVoter:
      if (member == nullptr) {
        rv = raft_add(&raft_, &change->req, change->id,
                      change->address.c_str(), on_changed);
      } else if (change->address != member->address) {
        rv = RAFT_DUPLICATEID;
      } else if (member->role == RAFT_VOTER) {
        change->Answer(0, raft_.id);  // done already (or just now)
        return;
      } else {
        rv = raft_assign(&raft_, &change->req, change->id, RAFT_VOTER,
                         on_changed);
      }
      break;
    case kRemove:
      rv = member == nullptr        ? RAFT_NOTFOUND
           : member->id == raft_.id ? RAFT_BADID
           : member->role == RAFT_VOTER && Voters() == 1
               ? RAFT_BADROLE
               : raft_remove(&raft_, &change->req, change->id, on_changed);
      break;
    case kTransferLead:
      if (Voters() == 1) {
        rv = RAFT_BADROLE;  // no one to take it
        break;
      }
      // To the most up-to-date voter; libraft calls back once it leads, or
      // after an election timeout without.
      rv = raft_transfer(&raft_, &change->transfer, 0, [](struct raft_transfer* req) {
        auto* self = static_cast<RaftNode*>(req->data);
        std::shared_ptr<Change> done = std::move(self->change_);
        self->change_ = nullptr;
        const raft_id leader = self->LeaderOnLoop();
        done->Answer(leader != self->raft_.id ? 0 : RAFT_LEADERSHIPLOST,
                     leader);
      });
      break;
  }
  if (rv != 0) {
    change->Answer(rv, LeaderOnLoop());
    return;
  }
  change_ = change;
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
  const raft_server* server = Member(raft_, id);
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
