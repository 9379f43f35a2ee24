#include "daemon/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <unistd.h>

#include "core/clock.h"
#include "core/coordinator.h"
#include "core/errors.h"
#include "daemon/deadline_timer.h"
#include "daemon/log_observer.h"
#include "daemon/logging.h"
#include "daemon/metrics.h"
#include "daemon/observer_fanout.h"
#ifdef DOGPILED_HAVE_RAFT
#include "daemon/replica.h"
#endif
#include "daemon/token_file.h"
#include "daemon/transport.h"
#include "daemon/value_journal.h"
#include "service/response_budget.h"
#include "service/services.h"

namespace dogpiled::daemon {
namespace {

// Tokens made durable at start, before the core reserves more ahead.
constexpr core::Token kFirstTokenBlock = 1 << 16;

// Sends near-cache heartbeats: ticks the serving tracker (a replicated
// leader's changes with its term) every heartbeat interval on the
// io_context thread.
class HeartbeatTimer {
 public:
  HeartbeatTimer(asio::io_context& io, const service::CoreSource& cores,
                 int64_t interval_ms)
      : cores_(cores), interval_ms_(interval_ms), timer_(io) {}
  void Start() {
    timer_.expires_after(std::chrono::milliseconds(interval_ms_));
    timer_.async_wait([this](const asio::error_code& ec) {
      if (ec) {
        return;
      }
      service::Serving serving;
      grpc::Status refused;
      if (cores_.Get(&serving, &refused) && serving.near_cache != nullptr) {
        serving.near_cache->Tick();
      }
      Start();
    });
  }
  void Stop() { timer_.cancel(); }

 private:
  const service::CoreSource& cores_;
  const int64_t interval_ms_;
  asio::steady_timer timer_;
};

// Turns health NOT_SERVING from any thread, for as long as a server is
// attached.
class HealthSwitch {
 public:
  void Attach(grpc::Server* server) {
    std::lock_guard<std::mutex> lock(mu_);
    server_ = server;
  }
  void NotServing() {
    std::lock_guard<std::mutex> lock(mu_);
    if (server_ != nullptr) {
      server_->GetHealthCheckService()->SetServingStatus(false);
    }
  }

 private:
  std::mutex mu_;
  grpc::Server* server_ = nullptr;
};

// Written to a temporary name and renamed, so a poller never reads half a
// number.
void WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << port << "\n";
  std::rename(tmp.c_str(), path.c_str());
}

// A tenant's quota at or above the daemon-wide cap lets one tenant fill
// the cap for everyone: say so at start-up.
void WarnAboutQuotas(const core::Limits& l) {
  const struct {
    const char* quota;
    uint64_t value;
    const char* cap;
    uint64_t cap_value;
  } pairs[] = {
      {"--max-sessions-per-tenant", l.max_sessions_per_tenant,
       "--max-sessions", l.max_sessions},
      {"--max-waiters-per-tenant", l.max_waiters_per_tenant, "--max-waiters",
       l.max_waiters},
  };
  for (const auto& p : pairs) {
    if (p.value >= p.cap_value) {
      spdlog::warn("{} ({}) is not below {} ({}): one tenant can use up the "
                   "whole daemon's share", p.quota, p.value, p.cap,
                   p.cap_value);
    }
  }
}

}  // namespace

int RunDaemon(const Config& config) {
  WarnAboutQuotas(config.limits);
  // Replicated mode (docs/replication.md): the Raft log under
  // --state-dir/raft is the durable state, in place of the token file and
  // the value journal.
  const bool replicated = !config.peers.empty();
#ifdef DOGPILED_HAVE_RAFT
  ReplicaOptions replica_options;
  if (replicated) {
    auto checked = ReplicaOptionsFrom(config);
    if (!checked.ok()) {
      spdlog::critical("{}", checked.status().message());
      return 1;
    }
    replica_options = std::move(checked.value());
  }
#else
  if (replicated) {
    spdlog::critical("peers: this dogpiled was built without libraft 0.22 "
                     "(bookworm-backports), so it runs as a single node only");
    return 1;
  }
#endif
  std::unique_ptr<TokenFile> token_file;
  std::unique_ptr<ValueJournal> journal;
  core::Token stored = 0;
  if (!config.state_dir.empty() && !replicated) {
    auto opened = TokenFile::Open(config.state_dir);
    if (!opened.ok()) {
      spdlog::critical("cannot use --state-dir: {} (pass a writable folder, "
                       "or --state-dir '' to keep no state)",
                       opened.status().message());
      return 1;
    }
    token_file = std::move(opened.value());
    stored = token_file->stored();
    // One block is made durable before serving; the core reserves the
    // next ones ahead, off its lock.
    if (core::Status s = token_file->PersistNow(FirstToken(stored) +
                                                kFirstTokenBlock);
        !s.ok()) {
      spdlog::critical("cannot write under --state-dir: {}", s.message());
      return 1;
    }
    auto policy = ParseFsyncPolicy(config.fsync);
    auto journal_opened =
        policy.ok() ? ValueJournal::Open(config.state_dir, policy.value(),
                                         config.compact_bytes)
                    : core::StatusOr<std::unique_ptr<ValueJournal>>(
                          policy.status());
    if (!journal_opened.ok()) {
      spdlog::critical("cannot keep values under --state-dir: {}",
                       journal_opened.status().message());
      return 1;
    }
    journal = std::move(journal_opened.value());
  } else if (!replicated) {
    spdlog::warn("no --state-dir: fencing tokens rest on the wall clock only");
  }

  core::SystemClock clock;
  core::CoordinatorOptions options;
  options.limits = config.limits;
  options.clock = &clock;
  options.token_store = token_file.get();
  options.first_token =
      token_file ? token_file->Durable() - kFirstTokenBlock
                 : FirstToken(stored);
  std::random_device entropy;  // getrandom(2): session ids are unguessable
  options.seed = (static_cast<uint64_t>(entropy()) << 32) | entropy();
  options.session_id_source = [&entropy] {
    return (static_cast<uint64_t>(entropy()) << 32) | entropy();
  };
  LogObserver log_observer(
      (static_cast<uint64_t>(entropy()) << 32) | entropy(),
      /*escape=*/config.log_format != "json");
  MetricsObserver metrics_observer;
  ObserverFanout observers({&log_observer, &metrics_observer});
  options.observer = &observers;
  // Replicated mode: each term of leadership builds its own Coordinator
  // from these options (Replica); a single node has one for its life.
  [[maybe_unused]] const core::CoordinatorOptions replica_core_options =
      options;
  options.journal = journal.get();
  core::NearCacheTracker near_cache(&clock, config.limits);
  options.near_cache = &near_cache;
  std::optional<core::Coordinator> single;
  if (!replicated) {
    single.emplace(options);
  }
  // Stops the journal (a last snapshot reads the core) before the core goes,
  // on every return path.
  struct JournalStopper {
    ValueJournal* journal;
    ~JournalStopper() {
      if (journal != nullptr) {
        journal->Stop();
      }
    }
  } journal_stopper{journal.get()};
  if (journal) {
    single->Restore(journal->loaded());
    const core::Stats restored = single->GetStats();
    if (core::Status s = journal->Start(&*single); !s.ok()) {
      spdlog::critical("cannot write under --state-dir: {}", s.message());
      return 1;
    }
    spdlog::info("restored {} entries ({} value bytes) from {}",
                 restored.entries, restored.stored_bytes, config.state_dir);
  }

  // A follower refuses until it leads; the refusal names the leader as soon
  // as it knows one.
  std::optional<service::CoreSource> cores;
  if (single) {
    cores.emplace(&*single, &near_cache);
  } else {
    cores.emplace(core::Unavailable("this member has just started and does "
                                    "not know the leader yet; retry shortly")
                      .WithReason(std::string(core::reason::kNotLeader)));
  }
  // Declared after the core, so it stops before the core it reads goes.
  std::unique_ptr<MetricsServer> metrics;
  if (!config.metrics_listen.empty()) {
    auto started = MetricsServer::Start(
        config.metrics_listen, metrics_observer, [&cores] {
          service::Serving serving;
          grpc::Status refused;
          return cores->Get(&serving, &refused) ? serving.core->GetStats()
                                                : core::Stats{};
        });
    if (started.ok()) {
      metrics = std::move(started.value());
      spdlog::info("metrics on http://{}/metrics (port {})",
                   config.metrics_listen, metrics->port());
      if (!config.metrics_port_file.empty()) {
        WritePortFile(config.metrics_port_file, metrics->port());
      }
    } else if (config.metrics_listen == kDefaultMetricsListen) {
      spdlog::warn("metrics off: {} (the default --metrics-listen is busy, "
                   "probably another dogpiled; pass a free address to have "
                   "them)", started.status().message());
    } else {
      spdlog::critical("cannot serve metrics: {} (pass another "
                       "--metrics-listen, or --metrics-listen '' to turn "
                       "metrics off)", started.status().message());
      return 1;
    }
  }

  std::map<std::string, std::string> registry_tokens;
  if (!config.registry_token_file.empty()) {
    auto read = service::ReadRegistryTokens(config.registry_token_file);
    if (!read.ok()) {
      spdlog::critical("{}", read.status().message());
      return 1;
    }
    registry_tokens = std::move(read.value());
    spdlog::info("{} registries require a bearer token",
                 registry_tokens.size());
  }
  service::AuthOptions auth_options;
  auth_options.registry_tokens = std::move(registry_tokens);
  auth_options.mutual_tls = !config.tls_client_ca.empty();
  if (!config.admin_token_file.empty()) {
    auto read = service::ReadAdminToken(config.admin_token_file);
    if (!read.ok()) {
      spdlog::critical("{}", read.status().message());
      return 1;
    }
    auth_options.admin_token = std::move(read.value());
  }
  const service::Auth auth(std::move(auth_options));
  service::ResponseBudget answer_budget(
      config.max_answer_bytes_per_connection, config.max_answer_bytes);
  auto credentials = ServerCredentials(config);
  if (!credentials.ok()) {
    spdlog::critical("{}", credentials.status().message());
    return 1;
  }

  service::SessionsService sessions(&*cores, &auth);
  service::DogpileService dogpile(&*cores, &auth, &answer_budget,
                                  journal.get());
  service::RWMutexService rwmutex(&*cores, &auth);
  // A group's member is built once the client port is known (it is
  // announced to the group), then attached.
  service::AdminService admin(&*cores, &auth, replicated);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, credentials.value(), &port);
  // Room for values up to twice the limit, so that an oversized value is
  // refused by our own check (RESOURCE_EXHAUSTED, VALUE_TOO_LARGE, naming
  // `value` and the limit), not by the transport's anonymous one.
  const uint64_t max_message = 2 * config.limits.max_value_bytes +
                               config.limits.max_key_bytes + (64 << 10);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<uint64_t>(
      max_message, std::numeric_limits<int>::max())));
  LimitTransport(config, builder);
  builder.RegisterService(&sessions);
  builder.RegisterService(&dogpile);
  builder.RegisterService(&rwmutex);
  builder.RegisterService(&admin);
  // Signals are caught from before the first client can see us (the port
  // file): a SIGTERM that arrives early is queued and handled as a graceful
  // stop, never the default kill.
  asio::io_context io;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::critical("cannot listen on {}", config.listen);
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  // A write or sync error under --state-dir is never ignored: health turns
  // NOT_SERVING, and what needs durability is refused from then on. The
  // hooks run on the journal's and token file's threads, which may outlive
  // the server: they reach it only through this switch.
  auto health = std::make_shared<HealthSwitch>();
  health->Attach(server.get());
  const auto on_storage_failure = [health](const core::Status& s) {
    spdlog::critical("state-dir failed, now NOT_SERVING: {}", s.message());
    health->NotServing();
  };
  if (journal) {
    journal->SetFailureHook(on_storage_failure);
    if (!journal->Health().ok()) {
      on_storage_failure(journal->Health());
    }
  }
  if (token_file) {
    token_file->SetFailureHook(on_storage_failure);
  }
#ifdef DOGPILED_HAVE_RAFT
  // After the server (so it stops first) and the io_context it posts to.
  std::unique_ptr<Replica> replica;
  if (replicated) {
    replica_options.core = replica_core_options;
    replica = StartReplica(std::move(replica_options), config, port, io,
                           &*cores);
    if (!replica) {
      return 1;
    }
    admin.AttachGroup(replica.get());
  }
#endif
  spdlog::info("dogpiled listening on {} (port {})", config.listen, port);
  if (!config.port_file.empty()) {
    DrainLogs();
    WritePortFile(config.port_file, port);
  }

  std::optional<DeadlineTimer> timer;
  if (single) {
    timer.emplace(io, *single);
    single->SetDeadlineHook([&timer] { timer->Poke(); });
    timer->Poke();
  }
  HeartbeatTimer heartbeats(io, *cores, near_cache.heartbeat_ms());
  heartbeats.Start();

  signals.async_wait([&](const asio::error_code& ec, int signal) {
    if (ec) {
      return;
    }
    spdlog::info("signal {}: shutting down", signal);
    server->GetHealthCheckService()->SetServingStatus(false);
    if (single) {
      single->Shutdown();  // parked calls are answered UNAVAILABLE now
      timer->Stop();
    }
#ifdef DOGPILED_HAVE_RAFT
    if (replica) {
      replica->Stop();  // the same, and Raft stops
    }
#endif
    near_cache.Shutdown();  // so are calls waiting for acks; watches end
    heartbeats.Stop();
    io.stop();
  });
  io.run();

  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(config.shutdown_grace_ms));
  server->Wait();
  health->Attach(nullptr);
  if (journal) {
    journal->Stop();  // a last snapshot, so the next start loads quickly
  }
  spdlog::info("dogpiled stopped");
  return 0;
}

}  // namespace dogpiled::daemon
