#include "daemon/replica.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "core/errors.h"
#include "daemon/record_io.h"
#include "daemon/token_file.h"

namespace dogpiled::daemon {
namespace {

// What a member that does not serve answers: who leads, when it knows.
core::Status NotLeader(uint64_t leader, const std::string& address,
                       int64_t retry_ms) {
  std::string message;
  core::Status::Metadata metadata;
  if (leader == 0) {
    message = "no leader right now (an election is under way or a majority "
              "is unreachable); retry shortly";
  } else {
    metadata.emplace_back("leader_id", std::to_string(leader));
    if (!address.empty()) {
      metadata.emplace_back("leader", address);
    }
    message = "not the leader: member " + std::to_string(leader) +
              (address.empty() ? "" : " at " + address) +
              " leads; retry there, with the same request_id";
  }
  metadata.emplace_back(std::string(core::kRetryDelayMs),
                        std::to_string(retry_ms));
  return core::Unavailable(message).WithReason(
      std::string(core::reason::kNotLeader), std::move(metadata));
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

core::StatusOr<std::vector<std::pair<uint64_t, std::string>>> ParsePeers(
    const std::string& text) {
  std::vector<std::pair<uint64_t, std::string>> peers;
  std::set<uint64_t> ids;
  std::stringstream in(text);
  std::string item;
  const auto bad = [](const std::string& why) {
    return core::InvalidArgument("peers: " + why +
                                 " (want ID=HOST:PORT,ID=HOST:PORT,...)");
  };
  while (std::getline(in, item, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      return bad("'" + item + "' is not ID=HOST:PORT");
    }
    uint64_t id = 0;
    try {
      size_t used = 0;
      id = std::stoull(item.substr(0, eq), &used);
      if (used != eq) {
        return bad("'" + item.substr(0, eq) + "' is not a number");
      }
    } catch (const std::exception&) {
      return bad("'" + item.substr(0, eq) + "' is not a number");
    }
    const std::string address = item.substr(eq + 1);
    if (id == 0 || !ids.insert(id).second) {
      return bad("ids must be positive and distinct, " +
                 std::to_string(id) + " is not");
    }
    if (address.rfind(':') == std::string::npos) {
      return bad("'" + address + "' has no port");
    }
    peers.emplace_back(id, address);
  }
  if (peers.empty()) {
    return bad("no member");
  }
  return peers;
}

std::string AdvertisedAddress(const std::string& listen, int port) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    char name[256] = {};
    gethostname(name, sizeof(name) - 1);
    host = name;
  }
  return host + ":" + std::to_string(port);
}

core::StatusOr<ReplicaOptions> ReplicaOptionsFrom(const Config& config) {
  auto peers = ParsePeers(config.peers);
  if (!peers.ok()) {
    return peers.status();
  }
  ReplicaOptions options;
  options.raft.id = config.node_id;
  for (const auto& [id, address] : peers.value()) {
    if (id == config.node_id) {
      options.raft.address = address;
    }
    options.raft.members.emplace_back(id, address);
  }
  if (options.raft.address.empty()) {
    return core::InvalidArgument(
        "node-id: " + std::to_string(config.node_id) +
        " is not one of --peers' ids (pass this member's id with "
        "--node-id)");
  }
  if (config.state_dir.empty()) {
    return core::InvalidArgument(
        "state-dir: a member of a replicated group keeps its Raft log "
        "there; it cannot be empty");
  }
  options.raft.dir = config.state_dir + "/raft";
  options.raft.join = config.join;
  options.raft.election_timeout_ms =
      static_cast<unsigned>(config.election_timeout_ms);
  options.raft.heartbeat_timeout_ms = static_cast<unsigned>(config.heartbeat_ms);
  options.raft.invalidation_horizon_ms =
      static_cast<unsigned>(config.limits.invalidation_horizon_ms);
  return options;
}

std::unique_ptr<Replica> StartReplica(ReplicaOptions options,
                                      const Config& config, int port,
                                      asio::io_context& io,
                                      service::CoreSource* cores) {
  std::error_code error;
  std::filesystem::create_directories(options.raft.dir, error);
  if (error) {
    spdlog::critical("state-dir: cannot create {}: {}", options.raft.dir,
                     error.message());
    return nullptr;
  }
  options.client_address = config.advertise.empty()
                               ? AdvertisedAddress(config.listen, port)
                               : config.advertise;
  const std::string dir = options.raft.dir;
  const std::string raft_address = options.raft.address;
  const std::string client_address = options.client_address;
  auto replica = std::make_unique<Replica>(std::move(options), io, cores);
  if (std::string failed = replica->Start(); !failed.empty()) {
    spdlog::critical("cannot start replication under {}: {}", dir, failed);
    return nullptr;
  }
  spdlog::info("member {} of {} (raft on {}), clients told {}",
               config.node_id, config.peers, raft_address, client_address);
  return replica;
}

Replica::Replica(ReplicaOptions options, asio::io_context& io,
                 service::CoreSource* cores)
    : options_(std::move(options)),
      io_(io),
      cores_(cores),
      node_([this] {
        replication::RaftNodeOptions raft = options_.raft;
        raft.on_leadership = [this](bool leading, uint64_t term) {
          OnLeadership(leading, term);
        };
        raft.on_check = [this](uint64_t leader,
                               const replication::CommittedState& state,
                               bool periodic) {
          OnCheck(leader, state, periodic);
        };
        return raft;
      }()) {}

Replica::~Replica() { node_.Stop(); }

std::string Replica::Start() { return node_.Start(); }

void Replica::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  Demote(serving_.term, core::ShuttingDown());
  cores_->Refuse(core::ShuttingDown());
  node_.Stop();
}

void Replica::OnLeadership(bool leading, uint64_t term) {
  if (!leading) {
    leading_term_.store(0);
    lead_journal_ = nullptr;
    spdlog::info("member {}: no longer leading (term {})", node_.id(), term);
    asio::post(io_, [this, term] {
      Demote(term, NotLeader(0, "", options_.raft.election_timeout_ms));
    });
    return;
  }
  leading_term_.store(term);
  spdlog::info("member {}: elected leader of term {}; taking the committed "
               "state over", node_.id(), term);
  cores_->Refuse(NotLeader(node_.id(), options_.client_address,
                           options_.raft.heartbeat_timeout_ms));
  // The announcement is this term's first entry: once it is applied, so is
  // everything earlier terms committed, and the state is final.
  RecordEncoder announce;
  announce.LeaderAnnounced({node_.id(), options_.client_address});
  auto journal =
      std::make_shared<replication::ReplicatedJournal>(&node_, LeaseMs());
  lead_journal_ = journal;
  node_.Propose(announce.Take(), [this, term, journal](bool ok) {
    if (!ok || leading_term_.load() != term) {
      return;  // lost the lead already; OnLeadership says so
    }
    core::PersistedState state = node_.state_on_loop().ToPersisted();
    asio::post(io_, [this, term, journal,
                     state = std::move(state)]() mutable {
      Promote(term, std::move(state), std::move(journal));
    });
  });
}

void Replica::OnCheck(uint64_t leader,
                      const replication::CommittedState& state,
                      bool periodic) {
  if (periodic) {
    // A check long after the last one means the loop was stopped or
    // starved: libraft has not yet looked at what arrived meanwhile (a newer
    // term deposes this member), so this check confirms nothing.
    const int64_t now = SteadyMs();
    const bool stalled = now - last_check_ms_ > LeaseMs();
    last_check_ms_ = now;
    // While libraft still calls this member leader (a majority was in touch
    // within an election timeout), its reads may go on.
    if (!stalled && leading_term_.load() != 0 && leader == node_.id() &&
        lead_journal_ != nullptr) {
      lead_journal_->Confirm();
    }
  }
  if (leading_term_.load() != 0) {
    return;  // the leader sets its own answers
  }
  // On a change at once (an applied announcement names the new leader's
  // address); and on every periodic check anyway, since a promotion that
  // lost its race with a demotion may have served for an instant since.
  std::string address = state.ClientAddress(leader);
  if (!periodic && leader == hint_leader_ && address == hint_address_) {
    return;
  }
  hint_leader_ = leader;
  hint_address_ = address;
  cores_->Refuse(NotLeader(leader, address,
                           leader == 0 ? options_.raft.election_timeout_ms
                                       : 0));
}

void Replica::Promote(uint64_t term, core::PersistedState state,
                      std::shared_ptr<replication::ReplicatedJournal> journal) {
  if (stopped_ || leading_term_.load() != term) {
    return;
  }
  // Near-caches: this term's watches, with ids of its own. A session that
  // watched under an earlier leader may still serve from its near-cache
  // until it notices; every Invalidate and Publish waits for it until then
  // (NearCacheTracker::Inherit, docs/near-cache.md).
  auto near_cache = std::make_shared<core::NearCacheTracker>(
      options_.core.clock, options_.core.limits, (term << 32) | 1);
  for (const core::PersistedSession& session : state.sessions) {
    if (session.watching) {
      near_cache->Inherit(session.id);
    }
  }
  core::CoordinatorOptions options = options_.core;
  options.journal = journal.get();
  options.near_cache = near_cache.get();
  options.token_store = nullptr;
  options.first_token = FirstToken(state.high_water);
  // The journal and the tracker live as long as the Coordinator that
  // writes to them.
  std::shared_ptr<core::Coordinator> core(
      new core::Coordinator(options),
      [journal, near_cache](core::Coordinator* c) { delete c; });
  core->Restore(state);
  timers_.push_back(std::make_unique<DeadlineTimer>(io_, *core));
  DeadlineTimer* timer = timers_.back().get();
  core->SetDeadlineHook([timer] { timer->Poke(); });
  timer->Poke();
  serving_ = {term, journal, core, near_cache, timer};
  {
    std::lock_guard lock(mu_);
    serving_term_ = term;
  }
  cores_->Serve({core, journal, near_cache});
  spdlog::info("member {}: serving as leader of term {}: {} sessions, {} "
               "grants, {} values taken over", node_.id(), term,
               state.sessions.size(), state.grants.size(),
               state.values.size());
}

void Replica::Demote(uint64_t term, const core::Status& why) {
  if (serving_.core == nullptr || (term != 0 && serving_.term > term)) {
    return;
  }
  cores_->Refuse(why);
  serving_.journal->Depose(why);
  serving_.core->Shutdown(why);
  // Calls waiting for acks answer `why`, and the watches end with it: the
  // clients drop their near-caches and watch at the next leader.
  serving_.near_cache->Shutdown(why);
  serving_.timer->Stop();
  spdlog::info("member {}: stopped serving term {}", node_.id(),
               serving_.term);
  serving_ = {};
  std::lock_guard lock(mu_);
  serving_term_ = 0;
}

core::Status Replica::Describe(v1::ClusterResponse* out) {
  std::optional<replication::GroupView> view = node_.View();
  if (!view) {
    return core::ShuttingDown();
  }
  Fill(*view, out);
  return core::Status();
}

void Replica::Fill(const replication::GroupView& view,
                   v1::ClusterResponse* out) {
  for (const auto& m : view.members) {
    v1::ClusterMember* member = out->add_members();
    member->set_id(m.id);
    member->set_raft_address(m.raft_address);
    member->set_client_address(m.client_address);
    member->set_voter(m.voter);
    if (m.id == view.self) {
      member->set_role(view.leading     ? v1::ClusterMember::LEADER
                       : view.candidate ? v1::ClusterMember::CANDIDATE
                                        : v1::ClusterMember::FOLLOWER);
    } else {
      member->set_role(m.id == view.leader ? v1::ClusterMember::LEADER
                                           : v1::ClusterMember::FOLLOWER);
    }
    if (m.id == view.leader) {
      out->set_leader_client_address(m.client_address);
    }
  }
  out->set_self_id(view.self);
  out->set_leader_id(view.leader);
  out->set_term(view.term);
  out->set_commit_index(view.commit_index);
  out->set_applied_index(view.applied_index);
  std::lock_guard lock(mu_);
  out->set_serving(serving_term_ != 0);
}

void Replica::AddMember(uint64_t id, std::string raft_address,
                        v1::ClusterResponse* out,
                        std::function<void(core::Status)> done) {
  node_.AddVoter(id, std::move(raft_address),
                 [this, id, out, done = std::move(done)](int rv,
                                                         uint64_t leader) {
                   if (rv == 0) {
                     Fill(node_.ViewOnLoop(), out);
                   }
                   done(ChangeStatus(rv, id, leader));
                 });
}

void Replica::RemoveMember(uint64_t id, v1::ClusterResponse* out,
                           std::function<void(core::Status)> done) {
  auto answer = [this, id, out, done = std::move(done)](int rv,
                                                         uint64_t leader) {
    if (rv == 0) {
      Fill(node_.ViewOnLoop(), out);
    }
    done(ChangeStatus(rv, id, leader));
  };
  if (id != node_.id()) {
    node_.RemoveMember(id, std::move(answer));
    return;
  }
  // A leader cannot commit its own removal and lead on: it hands the lead
  // over, and the caller's retry reaches the new leader, which removes it.
  node_.TransferLead([answer = std::move(answer)](int rv, uint64_t leader) {
    answer(rv == 0 ? RAFT_LEADERSHIPLOST : rv, leader);
  });
}

core::Status Replica::ChangeStatus(int rv, uint64_t id,
                                   uint64_t leader) const {
  const std::string member = "member " + std::to_string(id);
  const auto field = [](std::string_view name) {
    return core::Status::Metadata{{std::string(core::kFieldKey),
                                   std::string(name)}};
  };
  switch (rv) {
    case 0:
      return core::Status();
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
      return NotLeader(leader, node_.state_on_loop().ClientAddress(leader),
                       leader == 0 ? options_.raft.election_timeout_ms : 0);
    case RAFT_CANTCHANGE:
      return core::Status(core::Code::kAborted,
                          "another membership change is under way; retry "
                          "once it is done")
          .WithReason(std::string(core::reason::kChangeInProgress));
    case RAFT_DUPLICATEID:
      return core::Status(core::Code::kAlreadyExists,
                          "id: " + member + " exists at another address; "
                          "remove it first to move it")
          .WithReason(std::string(core::reason::kMemberExists), field("id"));
    case RAFT_DUPLICATEADDRESS:
      return core::Status(core::Code::kAlreadyExists,
                          "raft_address: another member has it")
          .WithReason(std::string(core::reason::kMemberExists),
                      field("raft_address"));
    case RAFT_NOCONNECTION:
      return core::Status(core::Code::kFailedPrecondition,
                          member + " did not catch up (is it running, "
                          "started with --join?); it stays in the group "
                          "without a vote: retry AddMember, or remove it")
          .WithReason(std::string(core::reason::kMemberUnreachable));
    case RAFT_NOTFOUND:
      return core::Status(core::Code::kNotFound,
                          "id: " + member + " is not in the group")
          .WithReason(std::string(core::reason::kNotAMember), field("id"));
    case RAFT_BADROLE:
      return core::Status(core::Code::kFailedPrecondition,
                          "id: " + member + " is the group's only voter")
          .WithReason(std::string(core::reason::kLastVoter), field("id"));
    case RAFT_SHUTDOWN:
      return core::ShuttingDown();
    default:
      return core::Unavailable(std::string("membership change failed: ") +
                               raft_strerror(rv));
  }
}

}  // namespace dogpiled::daemon
