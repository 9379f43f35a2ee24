// Scenario 4: `clients` take turns on one lock. Each loops: acquire (wait
// as the system makes it wait), release at once, acquire again. A handoff
// is a grant to a client other than the last holder; its latency runs from
// the moment the last holder sent its release.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "dogpiled_client.h"
#include "etcd/rpc.grpc.pb.h"
#include "etcd/v3lock.grpc.pb.h"
#include "grpc_util.h"
#include "handoff_tracker.h"
#include "proc_stats.h"
#include "resp_loop.h"
#include "scenarios.h"

namespace dogpiled::bench {
namespace {

constexpr int64_t kWaitMs = 10'000;
using Callback = std::function<void(bool ok, const std::string& error)>;

// One client of a lock served over gRPC. Calls never overlap per client.
class Contender {
 public:
  virtual ~Contender() = default;
  virtual void Acquire(Callback done) = 0;
  virtual void Release(Callback done) = 0;

 protected:
  // A fresh context per call; the last one has ended when this is called.
  grpc::ClientContext* NewContext() {
    context_ = std::make_unique<grpc::ClientContext>();
    SetDeadlineMs(*context_, kWaitMs + 5'000);
    return context_.get();
  }
  static void Report(const Callback& done, const grpc::Status& status,
                     bool granted, const char* what) {
    if (!status.ok()) {
      done(false, std::string(what) + ": " + Describe(status));
    } else {
      done(granted, granted ? "" : std::string(what) + ": not granted");
    }
  }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
};

class DogpiledWriter final : public Contender {
 public:
  DogpiledWriter(v1::RWMutex::Stub* stub, uint64_t session) : stub_(stub) {
    lock_.set_registry(RunRegistry("handoff"));
    lock_.set_key("lock");
    lock_.set_session_id(session);
    lock_.set_mode(v1::LockRequest::MODE_WRITE);
    lock_.set_wait_timeout_ms(kWaitMs);
    unlock_.set_registry(RunRegistry("handoff"));
    unlock_.set_key("lock");
    unlock_.set_session_id(session);
  }
  void Acquire(Callback done) override {
    stub_->async()->Lock(NewContext(), &lock_, &locked_,
                         [this, done](grpc::Status status) {
                           unlock_.set_token(locked_.token());
                           Report(done, status, locked_.acquired(), "Lock");
                         });
  }
  void Release(Callback done) override {
    stub_->async()->Unlock(NewContext(), &unlock_, &unlocked_,
                           [done](grpc::Status status) {
                             Report(done, status, true, "Unlock");
                           });
  }

 private:
  v1::RWMutex::Stub* const stub_;
  v1::LockRequest lock_;
  v1::LockResponse locked_;
  v1::UnlockRequest unlock_;
  v1::UnlockResponse unlocked_;
};

// Takes turns on the dogpile creator role of a key that never gets a
// value: Acquire parks while another holds the role, and Abandon passes
// the role to the first in line, who is answered CREATE.
class DogpiledCreator final : public Contender {
 public:
  DogpiledCreator(v1::Dogpile::Stub* stub, uint64_t session) : stub_(stub) {
    acquire_.set_registry(RunRegistry("handoff"));
    acquire_.set_key("role");
    acquire_.set_session_id(session);
    acquire_.set_expire_ms(3'600'000);
    acquire_.set_wait_timeout_ms(kWaitMs);
    abandon_.set_registry(RunRegistry("handoff"));
    abandon_.set_key("role");
    abandon_.set_session_id(session);
    abandon_.set_reason("bench handoff");
  }
  void Acquire(Callback done) override {
    stub_->async()->Acquire(
        NewContext(), &acquire_, &acquired_,
        [this, done](grpc::Status status) {
          abandon_.set_token(acquired_.token());
          Report(done, status,
                 acquired_.outcome() == v1::AcquireResponse::OUTCOME_CREATE,
                 "Acquire");
        });
  }
  void Release(Callback done) override {
    stub_->async()->Abandon(NewContext(), &abandon_, &abandoned_,
                            [done](grpc::Status status) {
                              Report(done, status, true, "Abandon");
                            });
  }

 private:
  v1::Dogpile::Stub* const stub_;
  v1::AcquireRequest acquire_;
  v1::AcquireResponse acquired_;
  v1::AbandonRequest abandon_;
  v1::AbandonResponse abandoned_;
};

// etcd's v3 lock service: Lock blocks on the server until this client's
// lease owns the lock; Unlock deletes the ownership key.
class EtcdLocker final : public Contender {
 public:
  EtcdLocker(v3lockpb::Lock::Stub* stub, int64_t lease) : stub_(stub) {
    lock_.set_name("bench-handoff");
    lock_.set_lease(lease);
  }
  void Acquire(Callback done) override {
    stub_->async()->Lock(NewContext(), &lock_, &locked_,
                         [this, done](grpc::Status status) {
                           unlock_.set_key(locked_.key());
                           Report(done, status, true, "etcd Lock");
                         });
  }
  void Release(Callback done) override {
    stub_->async()->Unlock(NewContext(), &unlock_, &unlocked_,
                           [done](grpc::Status status) {
                             Report(done, status, true, "etcd Unlock");
                           });
  }

 private:
  v3lockpb::Lock::Stub* const stub_;
  v3lockpb::LockRequest lock_;
  v3lockpb::LockResponse locked_;
  v3lockpb::UnlockRequest unlock_;
  v3lockpb::UnlockResponse unlocked_;
};

// Drives gRPC contenders until the window closes and all have stopped.
class GrpcDriver {
 public:
  GrpcDriver(std::vector<std::unique_ptr<Contender>> contenders,
             HandoffTracker* tracker, int64_t end_ns)
      : contenders_(std::move(contenders)),
        tracker_(tracker),
        end_ns_(end_ns),
        running_(static_cast<int>(contenders_.size())) {}

  void Run() {
    for (size_t i = 0; i < contenders_.size(); ++i) {
      Cycle(static_cast<int>(i));
    }
    std::unique_lock<std::mutex> lock(mutex_);
    stopped_.wait(lock, [this] { return running_ == 0; });
  }

 private:
  void Cycle(int c) {
    tracker_->Request();
    contenders_[c]->Acquire([this, c](bool ok, const std::string& error) {
      if (!ok) {
        tracker_->Fail(error);
        Stop();
        return;
      }
      tracker_->Granted(c);
      tracker_->Releasing(c);
      tracker_->Request();
      contenders_[c]->Release([this, c](bool ok, const std::string& error) {
        if (!ok) {
          tracker_->Fail(error);
        }
        if (ok && NowNs() < end_ns_ && !tracker_->failed()) {
          Cycle(c);
        } else {
          Stop();
        }
      });
    });
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--running_ == 0) {
      stopped_.notify_all();
    }
  }

  std::vector<std::unique_ptr<Contender>> contenders_;
  HandoffTracker* const tracker_;
  const int64_t end_ns_;
  std::mutex mutex_;
  std::condition_variable stopped_;
  int running_;  // guarded by mutex_
};

// redis-py's Lock as dogpile.cache uses it: SET NX PX to take it, a failed
// try sleeps poll_ms, compare-and-delete (a Lua script) to release. After
// releasing, a client waits one poll before trying again, as a waiter
// would; retrying at once would hand the lock straight back to the
// releaser, which is no turn-taking.
void RedisHandoff(const Options& options, HandoffTracker& tracker,
                  int64_t end_ns) {
  RespLoop loop;
  const int first = loop.Connect(options.redis_port, options.clients);
  const int64_t poll_ns = options.poll_ms * kNsPerMs;
  const std::string release_script =
      "if redis.call('get', KEYS[1]) == ARGV[1] then "
      "return redis.call('del', KEYS[1]) else return 0 end";
  int running = options.clients;
  int64_t grant_counter = 0;
  std::function<void(int)> attempt = [&](int c) {
    const std::string token =
        std::to_string(c) + ":" + std::to_string(grant_counter++);
    tracker.Request();
    loop.Command(first + c, {"SET", "bench:handoff", token, "NX", "PX", "30000"},
                 [&, c, token](const RespReply& reply) {
      const bool more = NowNs() < end_ns;
      if (reply.type != RespReply::kStatus) {  // nil: held by another
        if (more) {
          loop.After(poll_ns, [&, c] { attempt(c); });
        } else if (--running == 0) {
          loop.Stop();
        }
        return;
      }
      tracker.Granted(c);
      tracker.Releasing(c);
      tracker.Request();
      loop.Command(first + c,
                   {"EVAL", release_script, "1", "bench:handoff", token},
                   [&, c](const RespReply& released) {
                     if (released.type != RespReply::kInteger ||
                         released.integer != 1) {
                       tracker.Fail("redis release: lock was not ours");
                     }
                     if (NowNs() < end_ns) {
                       loop.After(poll_ns, [&, c] { attempt(c); });
                     } else if (--running == 0) {
                       loop.Stop();
                     }
                   });
    });
  };
  XorShift rng(options.seed);
  for (int c = 0; c < options.clients; ++c) {
    // Random phases, as independent processes would have.
    loop.After(static_cast<int64_t>(rng.Next() % poll_ns),
               [&, c] { attempt(c); });
  }
  if (!loop.Run(end_ns + 30 * kNsPerSec)) {
    tracker.Fail("redis handoff did not stop in time");
  }
}

}  // namespace

nlohmann::json RunHandoff(const Options& options) {
  const int n = options.clients;
  std::vector<std::unique_ptr<Contender>> contenders;
  std::unique_ptr<DogpiledClient> dogpiled;
  std::vector<std::unique_ptr<v3lockpb::Lock::Stub>> etcd_locks;
  std::unique_ptr<etcdserverpb::Lease::Stub> etcd_lease;
  std::vector<int64_t> leases;
  if (options.system == "dogpiled-write" || options.system == "dogpiled-create") {
    dogpiled = std::make_unique<DogpiledClient>(options.target,
                                                options.connections);
    const std::vector<uint64_t> sessions = dogpiled->OpenSessions(n);
    for (int i = 0; i < n; ++i) {
      if (options.system == "dogpiled-write") {
        contenders.push_back(std::make_unique<DogpiledWriter>(
            &dogpiled->rwmutex(i), sessions[i]));
      } else {
        contenders.push_back(std::make_unique<DogpiledCreator>(
            &dogpiled->dogpile(i), sessions[i]));
      }
    }
  } else if (options.system == "etcd") {
    auto channels = MakeChannels(options.etcd, options.connections);
    etcd_lease = etcdserverpb::Lease::NewStub(channels[0]);
    for (const auto& channel : channels) {
      etcd_locks.push_back(v3lockpb::Lock::NewStub(channel));
    }
    for (int i = 0; i < n; ++i) {
      grpc::ClientContext context;
      SetDeadlineMs(context, 10'000);
      etcdserverpb::LeaseGrantRequest request;
      request.set_ttl(600);
      etcdserverpb::LeaseGrantResponse response;
      grpc::Status status = etcd_lease->LeaseGrant(&context, request, &response);
      if (!status.ok() || response.id() == 0) {
        Die("etcd LeaseGrant: " + Describe(status));
      }
      leases.push_back(response.id());
      contenders.push_back(std::make_unique<EtcdLocker>(
          etcd_locks[i % etcd_locks.size()].get(), response.id()));
    }
  } else if (options.system != "redis") {
    Die("handoff: unknown system " + options.system);
  }

  const int64_t begin =
      NowNs() + static_cast<int64_t>(options.warmup_seconds * kNsPerSec);
  const int64_t end = begin + static_cast<int64_t>(options.seconds * kNsPerSec);
  HandoffTracker tracker(begin, end);
  // The server's CPU over the measured window, read at its edges by a
  // thread of its own while the contenders run.
  int64_t server_cpu_ns = 0;
  std::thread cpu_sampler;
  if (options.server_pid != 0) {
    cpu_sampler = std::thread([&] {
      SleepUntilNs(begin);
      const int64_t first = CpuTimeNs(options.server_pid);
      SleepUntilNs(end);
      server_cpu_ns = CpuTimeNs(options.server_pid) - first;
    });
  }
  if (options.system == "redis") {
    RedisHandoff(options, tracker, end);
  } else {
    GrpcDriver(std::move(contenders), &tracker, end).Run();
  }
  if (cpu_sampler.joinable()) {
    cpu_sampler.join();
  }
  for (int64_t lease : leases) {  // leave etcd as we found it
    grpc::ClientContext context;
    SetDeadlineMs(context, 10'000);
    etcdserverpb::LeaseRevokeRequest request;
    request.set_id(lease);
    etcdserverpb::LeaseRevokeResponse response;
    etcd_lease->LeaseRevoke(&context, request, &response);
  }
  nlohmann::json run = tracker.Figures();
  run["clients"] = n;
  if (options.server_pid != 0 && run.value("handoffs", 0) > 0) {
    run["server_cpu_us_per_handoff"] =
        server_cpu_ns / 1e3 / run["handoffs"].get<double>();
  }
  if (options.system == "redis") {
    run["poll_ms"] = options.poll_ms;
  }
  return {{"runs", nlohmann::json::array({std::move(run)})}};
}

}  // namespace dogpiled::bench
