// Scenario 5: `clients` hit one expired key at once; making the value takes
// creator_ms. The value is gone (a hard invalidation in dogpiled, an expired
// TTL in Redis), so nobody has a stale copy to serve and everyone needs the
// new one. Counted: creator calls, requests per client, wake-up after the
// first publish, total time.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "dogpiled_client.h"
#include "grpc_util.h"
#include "resp_loop.h"
#include "scenarios.h"
#include "stampede_record.h"
#include "stats.h"

namespace dogpiled::bench {
namespace {

constexpr int64_t kWaitMs = 30'000;

// Client c arrives this long after the stampede begins: evenly over
// arrival_ms, as requests from many processes do, so that pollers' phases
// are spread rather than locked to the creator's.
int64_t ArrivalNs(const Options& options, int c) {
  return options.arrival_ms * kNsPerMs * c / options.clients;
}

// Every client sends one Acquire. The first is elected creator; it works
// creator_ms on its own thread and publishes. The others park and are
// answered FRESH by the publish.
void DogpiledStampede(const Options& options, StampedeRecord& record,
                      nlohmann::json& out) {
  const int n = options.clients;
  const std::string registry = RunRegistry("stampede");
  DogpiledClient client(options.target, options.connections);
  const std::vector<uint64_t> sessions = client.OpenSessions(n + 1);
  const std::string value(options.value_bytes, 'v');
  // An old value, then a hard invalidation: it counts as absent.
  client.Store(registry, 0, 1, value, sessions[n], 1);
  {
    grpc::ClientContext context;
    SetDeadlineMs(context, 10'000);
    v1::InvalidateRequest request;
    request.set_registry(registry);
    request.set_key(KeyName(0));
    request.set_hard(true);
    v1::InvalidateResponse response;
    grpc::Status status = client.dogpile(0).Invalidate(&context, request,
                                                       &response);
    if (!status.ok()) {
      Die("Invalidate: " + Describe(status));
    }
  }
  const v1::StatsResponse before = client.Stats();

  struct Call {
    grpc::ClientContext context;
    v1::AcquireRequest request;
    v1::AcquireResponse response;
  };
  std::vector<std::unique_ptr<Call>> calls;
  std::mutex mutex;
  std::condition_variable all_done;
  int running = n;  // guarded by mutex
  std::vector<std::thread> creators;  // guarded by mutex
  auto finish = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    if (--running == 0) {
      all_done.notify_all();
    }
  };
  auto create = [&](int c, uint64_t token) {
    std::this_thread::sleep_for(std::chrono::milliseconds(options.creator_ms));
    grpc::ClientContext context;
    SetDeadlineMs(context, 10'000);
    v1::PublishRequest request;
    request.set_registry(registry);
    request.set_key(KeyName(0));
    request.set_session_id(sessions[c]);
    request.set_token(token);
    request.set_value(value);
    v1::PublishResponse response;
    record.Request(c);
    record.Publishing();
    grpc::Status status = client.dogpile(c).Publish(&context, request,
                                                    &response);
    if (status.ok()) {
      record.Ready(c, /*creator=*/true);
    } else {
      record.Fail("Publish: " + Describe(status));
    }
    finish();
  };
  for (int c = 0; c < n; ++c) {
    auto call = std::make_unique<Call>();
    call->request.set_registry(registry);
    call->request.set_key(KeyName(0));
    call->request.set_session_id(sessions[c]);
    call->request.set_expire_ms(3'600'000);
    call->request.set_wait_timeout_ms(kWaitMs);
    SetDeadlineMs(call->context, kWaitMs + 5'000);
    calls.push_back(std::move(call));
  }
  record.Start();
  for (int c = 0; c < n; ++c) {
    std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(record.t0_ns() + ArrivalNs(options, c))));
    Call* call = calls[c].get();
    record.Request(c);
    client.dogpile(c).async()->Acquire(
        &call->context, &call->request, &call->response,
        [&, c, call](grpc::Status status) {
          if (!status.ok()) {
            record.Fail("Acquire: " + Describe(status));
          } else if (call->response.outcome() ==
                     v1::AcquireResponse::OUTCOME_CREATE) {
            record.CreatorCall();
            std::lock_guard<std::mutex> lock(mutex);
            creators.emplace_back(create, c, call->response.token());
            return;  // the creator thread finishes this client
          } else if (call->response.outcome() ==
                     v1::AcquireResponse::OUTCOME_FRESH) {
            record.Ready(c, /*creator=*/false);
          } else {
            record.Fail("Acquire: neither FRESH nor CREATE");
          }
          finish();
        });
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    all_done.wait(lock, [&] { return running == 0; });
  }
  std::vector<std::thread> joinable;
  {
    std::lock_guard<std::mutex> lock(mutex);
    joinable.swap(creators);
  }
  for (std::thread& creator : joinable) {
    creator.join();
  }
  const v1::StatsResponse after = client.Stats();
  // The daemon's own count, so "one request per client" is not only the
  // harness's word.
  out["server_counts"] = {
      {"acquires_create", after.acquires_create() - before.acquires_create()},
      {"acquires_fresh", after.acquires_fresh() - before.acquires_fresh()},
      {"acquires_stale", after.acquires_stale() - before.acquires_stale()},
      {"publishes", after.publishes() - before.publishes()}};
}

enum class RedisWay {
  // Every client that misses runs the creator.
  kNoLock,
  // dogpile.cache over Redis: on a miss, take the lock (SET NX PX, retried
  // every poll_ms, as redis-py's blocking Lock does); holding it, GET again;
  // still missing: create, SET, release; otherwise release and use it.
  kPollLock,
  // A smarter hand-rolled client: one SET NX elects the creator; the others
  // poll the value with GET every poll_ms, never queueing on the lock.
  kPollValue,
};

void RedisStampede(const Options& options, StampedeRecord& record,
                   RedisWay way) {
  const bool locked = way != RedisWay::kNoLock;
  const int n = options.clients;
  RespLoop loop;
  const int first = loop.Connect(options.redis_port, n);
  const std::string value(options.value_bytes, 'v');
  const std::string key = "bench:stampede";
  const std::string lock_key = "bench:stampede:lock";
  const std::string release_script =
      "if redis.call('get', KEYS[1]) == ARGV[1] then "
      "return redis.call('del', KEYS[1]) else return 0 end";
  const int64_t poll_ns = options.poll_ms * kNsPerMs;
  int running = n;
  // Replies come in order: the second one means both keys are gone.
  loop.Command(first, {"DEL", key}, [](const RespReply&) {});
  loop.Command(first, {"DEL", lock_key},
               [&](const RespReply&) { loop.Stop(); });
  if (!loop.Run(NowNs() + 10 * kNsPerSec)) {
    Die("redis DEL timed out");
  }

  auto send = [&](int c, const std::vector<std::string>& args,
                  RespLoop::ReplyFn fn) {
    record.Request(c);
    loop.Command(first + c, args, std::move(fn));
  };
  auto finish = [&] {
    if (--running == 0) {
      loop.Stop();
    }
  };
  // Holds the lock (or no lock is used): run the creator, store, release.
  auto create = [&](int c, const std::string& token) {
    record.CreatorCall();
    loop.After(options.creator_ms * kNsPerMs, [&, c, token] {
      record.Publishing();
      send(c, {"SET", key, value, "PX", "3600000"},
           [&, c, token](const RespReply&) {
             record.Ready(c, /*creator=*/true);
             if (!locked) {
               finish();
               return;
             }
             send(c, {"EVAL", release_script, "1", lock_key, token},
                  [&](const RespReply&) { finish(); });
           });
    });
  };
  std::function<void(int)> poll_value = [&](int c) {
    send(c, {"GET", key}, [&, c](const RespReply& got) {
      if (got.type != RespReply::kString) {
        loop.After(poll_ns, [&, c] { poll_value(c); });
        return;
      }
      record.Ready(c, /*creator=*/false);
      finish();
    });
  };
  std::function<void(int)> try_lock = [&](int c) {
    const std::string token = "client-" + std::to_string(c);
    send(c, {"SET", lock_key, token, "NX", "PX", "30000"},
         [&, c, token](const RespReply& reply) {
           if (reply.type != RespReply::kStatus) {
             loop.After(poll_ns, [&, c] {
               way == RedisWay::kPollLock ? try_lock(c) : poll_value(c);
             });
             return;
           }
           send(c, {"GET", key}, [&, c, token](const RespReply& got) {
             if (got.type != RespReply::kString) {
               create(c, token);
               return;
             }
             record.Ready(c, /*creator=*/false);
             send(c, {"EVAL", release_script, "1", lock_key, token},
                  [&](const RespReply&) { finish(); });
           });
         });
  };
  record.Start();
  for (int c = 0; c < n; ++c) {
    loop.After(ArrivalNs(options, c), [&, c] {
      send(c, {"GET", key}, [&, c](const RespReply& got) {
        if (got.type == RespReply::kString) {
          record.Ready(c, /*creator=*/false);
          finish();
        } else if (locked) {
          try_lock(c);
        } else {
          create(c, "");
        }
      });
    });
  }
  if (!loop.Run(record.t0_ns() + 120 * kNsPerSec)) {
    record.Fail("redis stampede did not end within 120 s");
  }
}

}  // namespace

nlohmann::json RunStampede(const Options& options) {
  StampedeRecord record(options.clients);
  nlohmann::json extra = nlohmann::json::object();
  if (options.system == "dogpiled") {
    DogpiledStampede(options, record, extra);
  } else if (options.system == "redis-lock") {
    RedisStampede(options, record, RedisWay::kPollLock);
  } else if (options.system == "redis-lock-poll-value") {
    RedisStampede(options, record, RedisWay::kPollValue);
  } else if (options.system == "no-lock") {
    RedisStampede(options, record, RedisWay::kNoLock);
  } else {
    Die("stampede: unknown system " + options.system);
  }
  nlohmann::json run = record.Figures(NowNs());
  run["creator_ms"] = options.creator_ms;
  if (options.system.starts_with("redis-lock")) {
    run["poll_ms"] = options.poll_ms;
  }
  run.update(extra);
  return {{"runs", nlohmann::json::array({std::move(run)})}};
}

}  // namespace dogpiled::bench
