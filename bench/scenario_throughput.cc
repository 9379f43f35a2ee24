// Scenarios 1, 2, 3 and 7: closed-loop throughput and latency of single
// calls. dogpiled and the no-op server are driven by the same loop, the
// same connections and the same concurrency, so their ratio is fair.
#include <memory>

#include "closed_loop.h"
#include "dogpiled_client.h"
#include "grpc_util.h"
#include "noop.grpc.pb.h"
#include "proc_stats.h"
#include "resp_loop.h"
#include "scenarios.h"
#include "stats.h"

namespace dogpiled::bench {
namespace {

constexpr int64_t kCallDeadlineMs = 10'000;

// CPU time the server and this client spend in the measured window: less
// noisy than rates on a shared machine, and says where the time goes.
struct CpuMeter {
  int pid = 0;
  int64_t server_ns = 0;
  int64_t client_ns = 0;
  int64_t wall_ns = 0;
  void Begin() {
    server_ns = -CpuTimeNs(pid);
    client_ns = -CpuTimeNs(0);
    wall_ns = -NowNs();
  }
  void End() {
    server_ns += CpuTimeNs(pid);
    client_ns += CpuTimeNs(0);
    wall_ns += NowNs();
  }
};

LoopOptions Loop(const Options& options, CpuMeter* cpu) {
  LoopOptions loop;
  loop.concurrency = options.concurrency;
  loop.seconds = options.seconds;
  loop.warmup_seconds = options.warmup_seconds;
  cpu->pid = options.server_pid;
  loop.on_window_begin = [cpu] { cpu->Begin(); };
  loop.on_window_end = [cpu] { cpu->End(); };
  return loop;
}

nlohmann::json Figures(LoopResult& result, const CpuMeter& cpu) {
  nlohmann::json out;
  if (cpu.wall_ns > 0 && result.ops > 0) {
    const double ops = static_cast<double>(result.ops);
    if (cpu.pid != 0) {
      out["server_cpu_us_per_op"] = cpu.server_ns / 1e3 / ops;
      out["server_cpu_cores"] =
          static_cast<double>(cpu.server_ns) / static_cast<double>(cpu.wall_ns);
    }
    out["client_cpu_us_per_op"] = cpu.client_ns / 1e3 / ops;
  }
  out["ops"] = result.ops;
  out["errors"] = result.errors;
  out["seconds"] = result.seconds;
  out["ops_per_sec"] = result.ops_per_sec();
  out["latency"] = Summarize(result.latencies_ns);
  if (!result.first_error.empty()) {
    out["first_error"] = result.first_error;
  }
  return out;
}

void Report(const OpDone& done, const grpc::Status& status,
            const std::string& what) {
  done(status.ok(), status.ok() ? "" : what + ": " + Describe(status));
}

// GET over `concurrency` Redis connections, one command in flight on each.
LoopResult RedisGets(const Options& options, int64_t keys, RespLoop& loop,
                     int first_conn) {
  LoopResult result;
  const int64_t begin =
      NowNs() + static_cast<int64_t>(options.warmup_seconds * kNsPerSec);
  const int64_t end = begin + static_cast<int64_t>(options.seconds * kNsPerSec);
  XorShift rng(options.seed);
  int active = options.concurrency;
  std::function<void(int)> issue = [&](int conn) {
    const int64_t started = NowNs();
    const std::string key = KeyName(static_cast<int64_t>(rng.Next() % keys));
    loop.Command(conn, {"GET", key}, [&, conn, started](const RespReply& r) {
      const int64_t now = NowNs();
      const bool ok = r.type == RespReply::kString &&
                      static_cast<int>(r.str.size()) == options.value_bytes;
      if (!ok) {
        ++result.errors;
        result.first_error = "GET: unexpected reply";
      } else if (started >= begin && now <= end) {
        ++result.ops;
        result.latencies_ns.push_back(now - started);
      }
      if (now < end && result.errors < 100) {
        issue(conn);
      } else if (--active == 0) {
        loop.Stop();
      }
    });
  };
  for (int i = 0; i < options.concurrency; ++i) {
    issue(first_conn + i);
  }
  loop.Run(end + 10 * kNsPerSec);
  result.seconds = options.seconds;
  return result;
}

nlohmann::json FreshRedis(const Options& options) {
  RespLoop loop;
  const int first = loop.Connect(options.redis_port, options.concurrency);
  const std::string value(options.value_bytes, 'v');
  nlohmann::json runs = nlohmann::json::array();
  int64_t stored = 0;
  for (int64_t keys : options.keys) {
    int64_t unanswered = keys - stored;
    for (; stored < keys; ++stored) {
      loop.Command(first + static_cast<int>(stored % options.concurrency),
                   {"SET", KeyName(stored), value},
                   [&](const RespReply&) {
                     if (--unanswered == 0) {
                       loop.Stop();
                     }
                   });
    }
    if (unanswered > 0 && !loop.Run(NowNs() + 600 * kNsPerSec)) {
      Die("storing keys in redis timed out");
    }
    LoopResult result = RedisGets(options, keys, loop, first);
    nlohmann::json run = Figures(result, CpuMeter());
    run["keys"] = keys;
    runs.push_back(std::move(run));
  }
  return {{"runs", std::move(runs)}};
}

}  // namespace

nlohmann::json RunCeiling(const Options& options) {
  auto channels = MakeChannels(options.target, options.connections);
  std::vector<std::unique_ptr<Noop::Stub>> stubs;
  for (const auto& channel : channels) {
    stubs.push_back(Noop::NewStub(channel));
  }
  struct Slot {
    std::unique_ptr<grpc::ClientContext> context;
    PingRequest request;
    PingResponse response;
  };
  std::vector<Slot> slots(options.concurrency);
  CpuMeter cpu;
  LoopResult result = RunClosedLoop(
      Loop(options, &cpu), [&](int s, int64_t /*index*/, OpDone done) {
        Slot& slot = slots[s];
        slot.context = std::make_unique<grpc::ClientContext>();
        SetDeadlineMs(*slot.context, kCallDeadlineMs);
        slot.request.set_payload_bytes(
            static_cast<uint32_t>(options.value_bytes));
        stubs[s % stubs.size()]->async()->Ping(
            slot.context.get(), &slot.request, &slot.response,
            [done](grpc::Status status) { Report(done, status, "Ping"); });
      });
  nlohmann::json run = Figures(result, cpu);
  return {{"runs", nlohmann::json::array({std::move(run)})}};
}

nlohmann::json RunFresh(const Options& options) {
  if (options.system == "redis") {
    return FreshRedis(options);
  }
  DogpiledClient client(options.target, options.connections);
  const std::vector<uint64_t> sessions =
      client.OpenSessions(options.concurrency);
  const std::string registry = RunRegistry("fresh");
  const std::string value(options.value_bytes, 'v');
  struct Slot {
    std::unique_ptr<grpc::ClientContext> context;
    v1::AcquireRequest request;
    v1::AcquireResponse response;
  };
  std::vector<Slot> slots(options.concurrency);
  std::vector<XorShift> rngs;
  for (int i = 0; i < options.concurrency; ++i) {
    rngs.emplace_back(options.seed * 7919 + i);
  }
  nlohmann::json runs = nlohmann::json::array();
  int64_t stored = 0;
  for (int64_t keys : options.keys) {
    const int64_t store_begin = NowNs();
    client.Store(registry, stored, keys, value, sessions[0],
                 options.concurrency);
    const double store_seconds =
        static_cast<double>(NowNs() - store_begin) / kNsPerSec;
    stored = keys;
    CpuMeter cpu;
    LoopResult result = RunClosedLoop(
        Loop(options, &cpu), [&](int s, int64_t /*index*/, OpDone done) {
          Slot& slot = slots[s];
          slot.request.set_registry(registry);
          slot.request.set_key(
              KeyName(static_cast<int64_t>(rngs[s].Next() % keys)));
          slot.request.set_session_id(sessions[s]);
          slot.request.set_expire_ms(3'600'000);
          slot.request.set_wait_timeout_ms(1'000);
          slot.context = std::make_unique<grpc::ClientContext>();
          SetDeadlineMs(*slot.context, kCallDeadlineMs);
          client.dogpile(s).async()->Acquire(
              slot.context.get(), &slot.request, &slot.response,
              [&slot, done, &options](grpc::Status status) {
                if (status.ok() &&
                    (slot.response.outcome() !=
                         v1::AcquireResponse::OUTCOME_FRESH ||
                     static_cast<int>(slot.response.value().size()) !=
                         options.value_bytes)) {
                  done(false, "Acquire: not FRESH with the stored value");
                  return;
                }
                Report(done, status, "Acquire");
              });
        });
    nlohmann::json run = Figures(result, cpu);
    run["keys"] = keys;
    run["store_seconds"] = store_seconds;
    run["server"] = ToJson(SampleProc(options.server_pid));
    runs.push_back(std::move(run));
  }
  return {{"runs", std::move(runs)}};
}

nlohmann::json RunElection(const Options& options) {
  DogpiledClient client(options.target, options.connections);
  Elections elections(&client, RunRegistry("election"),
                      std::string(options.value_bytes, 'v'),
                      client.OpenSessions(options.concurrency),
                      options.concurrency, /*first_key=*/0);
  CpuMeter cpu;
  LoopResult result = RunClosedLoop(
      Loop(options, &cpu), [&](int slot, int64_t index, OpDone done) {
        elections.Start(slot, index, std::move(done));
      });
  nlohmann::json run = Figures(result, cpu);
  run["server"] = ToJson(SampleProc(options.server_pid));
  return {{"runs", nlohmann::json::array({std::move(run)})}};
}

}  // namespace dogpiled::bench
