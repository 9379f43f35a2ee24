// Scenario 6: `clients` calls parked on one key, then one Publish answers
// them all. The floor is bench_noop_server parking the same number of calls
// and releasing them at once: answering N calls costs N responses' CPU on
// any gRPC server, so that is the time to compare with.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "dogpiled_client.h"
#include "grpc_util.h"
#include "noop.grpc.pb.h"
#include "proc_stats.h"
#include "scenarios.h"
#include "stats.h"

namespace dogpiled::bench {
namespace {

constexpr int64_t kWaitMs = 120'000;

// Counts answers to parked calls and when each came.
class Answers {
 public:
  explicit Answers(int n) : answered_ns_(n), pending_(n) {}

  void Answered(int i, bool ok, const std::string& error) {
    answered_ns_[i] = NowNs();
    std::lock_guard<std::mutex> lock(mutex_);
    if (!ok && errors_++ == 0) {
      first_error_ = error;
    }
    if (--pending_ == 0) {
      done_.notify_all();
    }
  }

  // False if some call is still unanswered at the deadline.
  bool Wait(int64_t deadline_ns) {
    std::unique_lock<std::mutex> lock(mutex_);
    return done_.wait_for(lock, std::chrono::nanoseconds(deadline_ns - NowNs()),
                          [this] { return pending_ == 0; });
  }

  nlohmann::json Figures(int64_t released_ns) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<int64_t> wake;
    int64_t last = released_ns;
    for (int64_t t : answered_ns_) {
      if (t != 0) {
        wake.push_back(t - released_ns);
        last = std::max(last, t);
      }
    }
    nlohmann::json out;
    out["answered"] = wake.size();
    out["errors"] = errors_;
    if (!first_error_.empty()) {
      out["first_error"] = first_error_;
    }
    out["all_answered_ms"] = static_cast<double>(last - released_ns) / 1e6;
    out["wake"] = Summarize(wake);
    return out;
  }

 private:
  std::vector<int64_t> answered_ns_;  // each written once, by its callback
  std::mutex mutex_;
  std::condition_variable done_;
  int pending_;  // guarded by mutex_
  int64_t errors_ = 0;
  std::string first_error_;
};

// Polls `count` until it reaches n (every call parked) or 60 s pass.
bool WaitParked(const std::function<uint64_t()>& count, uint64_t n) {
  const int64_t deadline = NowNs() + 60 * kNsPerSec;
  while (NowNs() < deadline) {
    if (count() >= n) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

template <typename Request, typename Response>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;
};

}  // namespace

nlohmann::json RunParked(const Options& options) {
  const int n = options.clients;
  const bool dogpiled = options.system == "dogpiled";
  if (!dogpiled && options.system != "noop") {
    Die("parked: unknown system " + options.system);
  }
  Answers answers(n);
  nlohmann::json run;
  int64_t released_ns = 0;
  int64_t server_cpu_ns = 0;
  std::unique_ptr<DogpiledClient> client;
  std::vector<std::unique_ptr<Noop::Stub>> noop;
  std::vector<std::unique_ptr<Call<v1::AcquireRequest, v1::AcquireResponse>>>
      acquires;
  std::vector<std::unique_ptr<Call<ParkRequest, ParkResponse>>> parks;
  if (dogpiled) {
    client = std::make_unique<DogpiledClient>(options.target,
                                              options.connections);
    // Waiters spread over many sessions, plus one for the creator.
    const int waiter_sessions = std::min(n, 100);
    const std::vector<uint64_t> sessions =
        client->OpenSessions(waiter_sessions + 1);
    const uint64_t creator = sessions.back();
    uint64_t token = 0;
    run["before"] = ToJson(SampleProc(options.server_pid));
    v1::AcquireRequest elect;
    elect.set_registry(RunRegistry("parked"));
    elect.set_key(KeyName(0));
    elect.set_session_id(creator);
    elect.set_expire_ms(3'600'000);
    elect.set_wait_timeout_ms(kWaitMs);
    elect.set_creation_timeout_ms(kWaitMs);
    {
      grpc::ClientContext context;
      SetDeadlineMs(context, 10'000);
      v1::AcquireResponse elected;
      grpc::Status status = client->dogpile(0).Acquire(&context, elect,
                                                       &elected);
      if (!status.ok() ||
          elected.outcome() != v1::AcquireResponse::OUTCOME_CREATE) {
        Die("parked: the first Acquire was not elected creator");
      }
      token = elected.token();
    }
    for (int i = 0; i < n; ++i) {
      auto call = std::make_unique<
          Call<v1::AcquireRequest, v1::AcquireResponse>>();
      call->request = elect;
      call->request.set_session_id(sessions[i % waiter_sessions]);
      SetDeadlineMs(call->context, kWaitMs + 5'000);
      auto* raw = call.get();
      acquires.push_back(std::move(call));
      client->dogpile(i).async()->Acquire(
          &raw->context, &raw->request, &raw->response,
          [&answers, i, raw](grpc::Status status) {
            const bool fresh = status.ok() &&
                               raw->response.outcome() ==
                                   v1::AcquireResponse::OUTCOME_FRESH;
            answers.Answered(i, fresh,
                             status.ok() ? "Acquire: not FRESH"
                                         : "Acquire: " + Describe(status));
          });
    }
    if (!WaitParked([&] { return client->Stats().waiters(); }, n)) {
      Die("parked: the waiters did not all park within 60 s");
    }
    run["during"] = ToJson(SampleProc(options.server_pid));
    grpc::ClientContext context;
    SetDeadlineMs(context, 60'000);
    v1::PublishRequest publish;
    publish.set_registry(elect.registry());
    publish.set_key(KeyName(0));
    publish.set_session_id(creator);
    publish.set_token(token);
    publish.set_value(std::string(options.value_bytes, 'v'));
    v1::PublishResponse published;
    server_cpu_ns = CpuTimeNs(options.server_pid);
    released_ns = NowNs();
    grpc::Status status = client->dogpile(0).Publish(&context, publish,
                                                     &published);
    if (!status.ok()) {
      Die("parked: Publish: " + Describe(status));
    }
  } else {
    for (const auto& channel : MakeChannels(options.target,
                                            options.connections)) {
      noop.push_back(Noop::NewStub(channel));
    }
    run["before"] = ToJson(SampleProc(options.server_pid));
    for (int i = 0; i < n; ++i) {
      auto call = std::make_unique<Call<ParkRequest, ParkResponse>>();
      call->request.set_payload_bytes(
          static_cast<uint32_t>(options.value_bytes));
      SetDeadlineMs(call->context, kWaitMs + 5'000);
      auto* raw = call.get();
      parks.push_back(std::move(call));
      noop[i % noop.size()]->async()->Park(
          &raw->context, &raw->request, &raw->response,
          [&answers, i](grpc::Status status) {
            answers.Answered(i, status.ok(), "Park: " + Describe(status));
          });
    }
    auto parked = [&] {
      grpc::ClientContext context;
      SetDeadlineMs(context, 10'000);
      ParkedResponse response;
      noop[0]->Parked(&context, {}, &response);
      return response.parked();
    };
    if (!WaitParked(parked, n)) {
      Die("parked: the calls did not all park within 60 s");
    }
    run["during"] = ToJson(SampleProc(options.server_pid));
    grpc::ClientContext context;
    SetDeadlineMs(context, 60'000);
    ReleaseResponse released;
    server_cpu_ns = CpuTimeNs(options.server_pid);
    released_ns = NowNs();
    grpc::Status status = noop[0]->Release(&context, {}, &released);
    if (!status.ok()) {
      Die("parked: Release: " + Describe(status));
    }
  }
  if (!answers.Wait(NowNs() + 60 * kNsPerSec)) {
    Die("parked: not every parked call was answered within 60 s");
  }
  // CPU the server spent answering (and cleaning up after, hence the
  // pause): steadier than the elapsed time on a shared machine.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  run["release_server_cpu_ms"] =
      static_cast<double>(CpuTimeNs(options.server_pid) - server_cpu_ns) / 1e6;
  run["after"] = ToJson(SampleProc(options.server_pid));
  run.update(answers.Figures(released_ns));
  run["waiters"] = n;
  return {{"runs", nlohmann::json::array({std::move(run)})}};
}

}  // namespace dogpiled::bench
