#include "stampede_record.h"

#include <algorithm>

#include "stats.h"

namespace dogpiled::bench {

StampedeRecord::StampedeRecord(int clients) : clients_(clients) {}

void StampedeRecord::Start() { t0_ns_ = NowNs(); }

void StampedeRecord::Request(int c) {
  clients_[c].requests_ns.push_back(NowNs());
}

void StampedeRecord::Publishing() {
  int64_t expected = 0;
  publish_ns_.compare_exchange_strong(expected, NowNs());
}

void StampedeRecord::Ready(int c, bool creator) {
  clients_[c].ready_ns = NowNs();
  clients_[c].creator = creator;
}

void StampedeRecord::Fail(const std::string& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (errors_++ == 0) {
    first_error_ = error;
  }
}

nlohmann::json StampedeRecord::Figures(int64_t ended_ns) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t publish = publish_ns_.load();
  std::vector<int64_t> ready;  // every client: t0 -> value in hand
  std::vector<int64_t> wake;   // waiters: first publish -> value in hand
  std::vector<double> ready_ms;
  std::vector<int64_t> requests_per_ms;
  int64_t requests = 0;
  int64_t max_requests = 0;
  int64_t waiter_requests = 0;  // clients that did not create
  int64_t waiters = 0;
  int64_t max_waiter_requests = 0;
  int64_t unanswered = 0;
  int64_t last_ready = t0_ns_;
  for (const Client& client : clients_) {
    requests += static_cast<int64_t>(client.requests_ns.size());
    max_requests =
        std::max(max_requests, static_cast<int64_t>(client.requests_ns.size()));
    if (!client.creator) {
      ++waiters;
      waiter_requests += static_cast<int64_t>(client.requests_ns.size());
      max_waiter_requests = std::max(
          max_waiter_requests, static_cast<int64_t>(client.requests_ns.size()));
    }
    for (int64_t sent : client.requests_ns) {
      const auto bin = static_cast<size_t>((sent - t0_ns_) / kNsPerMs);
      if (requests_per_ms.size() <= bin) {
        requests_per_ms.resize(bin + 1);
      }
      ++requests_per_ms[bin];
    }
    if (client.ready_ns == 0) {
      ++unanswered;
      continue;
    }
    last_ready = std::max(last_ready, client.ready_ns);
    ready.push_back(client.ready_ns - t0_ns_);
    ready_ms.push_back(static_cast<double>(client.ready_ns - t0_ns_) / 1e6);
    if (!client.creator && publish != 0 && client.ready_ns >= publish) {
      wake.push_back(client.ready_ns - publish);
    }
  }
  std::sort(ready_ms.begin(), ready_ms.end());
  nlohmann::json out;
  out["clients"] = clients_.size();
  out["creator_calls"] = creator_calls_.load();
  out["requests"] = requests;
  out["requests_per_client_mean"] =
      static_cast<double>(requests) / static_cast<double>(clients_.size());
  out["requests_per_client_max"] = max_requests;
  // Clients that got the value from someone else: no polling means one.
  out["requests_per_waiter_mean"] =
      waiters == 0 ? 0.0
                   : static_cast<double>(waiter_requests) /
                         static_cast<double>(waiters);
  out["requests_per_waiter_max"] = max_waiter_requests;
  out["unanswered"] = unanswered;
  out["errors"] = errors_;
  if (!first_error_.empty()) {
    out["first_error"] = first_error_;
  }
  out["total_ms"] = static_cast<double>(last_ready - t0_ns_) / 1e6;
  out["run_ms"] = static_cast<double>(ended_ns - t0_ns_) / 1e6;
  out["publish_ms"] =
      publish == 0 ? -1.0 : static_cast<double>(publish - t0_ns_) / 1e6;
  out["ready"] = Summarize(ready);
  out["wake"] = Summarize(wake);
  out["timeline"] = {{"ready_ms", ready_ms},
                     {"requests_per_ms", requests_per_ms}};
  return out;
}

}  // namespace dogpiled::bench
