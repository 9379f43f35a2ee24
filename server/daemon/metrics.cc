#include "daemon/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace dogpiled::daemon {
namespace {

// Seconds, from a millisecond to two minutes: waits and creations both span
// "answered at once" to "ran into a 30 s default timeout".
const prometheus::Histogram::BucketBoundaries kSecondsBuckets = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5,   1,     2.5,  5,     10,   30,  60, 120};

double Seconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

prometheus::MetricFamily Family(std::string name, std::string help,
                                prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

prometheus::ClientMetric Sample(uint64_t value, prometheus::MetricType type,
                                std::vector<prometheus::ClientMetric::Label>
                                    labels = {}) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = static_cast<double>(value);
  } else {
    metric.gauge.value = static_cast<double>(value);
  }
  return metric;
}

// How a Stats field is exported, where the default (dogpiled_<field> for a
// gauge, dogpiled_<field>_total for a counter) is not the name operators
// already know, and the help text each metric shows.
struct MetricName {
  const char* field;
  const char* metric;  // nullptr: the default
  const char* label;   // "outcome=..." value, or nullptr
  const char* help;
};
constexpr MetricName kMetricNames[] = {
    {"sessions", nullptr, nullptr, "Open sessions"},
    {"registries", nullptr, nullptr, "Registries in use"},
    {"entries", nullptr, nullptr, "Live entries over all registries"},
    {"waiters", "dogpiled_parked_waiters", nullptr,
     "Parked Acquire and Lock calls"},
    {"stored_bytes", nullptr, nullptr,
     "Bytes of stored values, keys included"},
    {"watches", nullptr, nullptr,
     "Near-cache Watch streams, open or broken but still owed acks"},
    {"tracked_keys", nullptr, nullptr,
     "(session, key) pairs held by near-caches"},
    {"unacked_pushes", nullptr, nullptr,
     "Near-cache invalidations pushed and not yet acked"},
    {"acquires_fresh", "dogpiled_acquires_total", "fresh",
     "Acquire calls by the outcome they returned"},
    {"acquires_stale", "dogpiled_acquires_total", "stale", nullptr},
    {"acquires_create", "dogpiled_acquires_total", "create", nullptr},
    {"acquires_not_ready", "dogpiled_acquires_total", "not_ready", nullptr},
    {"publishes", nullptr, nullptr, "Accepted Publish calls"},
    {"abandons", nullptr, nullptr, "Accepted Abandon calls"},
    {"fencing_rejections", nullptr, nullptr,
     "Publish, Abandon or Unlock refused for a token that lost its grant"},
    {"session_expiries", nullptr, nullptr, "Sessions ended by their TTL"},
    {"creation_timeouts", nullptr, nullptr,
     "Creator roles lost to creation_timeout"},
    {"evictions", nullptr, nullptr, "Values dropped for the memory budget"},
    {"lock_grants", nullptr, nullptr, "RWMutex grants, read and write"},
    {"early_refreshes", nullptr, nullptr, "CREATE handed out early by XFetch"},
    {"wait_timeouts", nullptr, nullptr, "Parked calls whose wait ran out"},
};

// Appends one Stats field to `out` as a sample of its metric family.
void Add(std::vector<prometheus::MetricFamily>& out, const std::string& field,
         int number, uint64_t value) {
  // Fields numbered below 10 are gauges (admin.proto).
  const prometheus::MetricType type = number < 10
                                          ? prometheus::MetricType::Gauge
                                          : prometheus::MetricType::Counter;
  std::string metric = "dogpiled_" + field +
                       (type == prometheus::MetricType::Counter ? "_total"
                                                                : "");
  std::string help = field;
  const char* label = nullptr;
  for (const MetricName& m : kMetricNames) {
    if (field == m.field) {
      metric = m.metric != nullptr ? m.metric : metric;
      help = m.help != nullptr ? m.help : help;
      label = m.label;
    }
  }
  if (out.empty() || out.back().name != metric) {
    out.push_back(Family(metric.c_str(), help.c_str(), type));
  }
  out.back().metric.push_back(
      label == nullptr ? Sample(value, type)
                       : Sample(value, type, {{"outcome", label}}));
}

// Gauges and counters, read from one Stats snapshot per scrape so that they
// agree with each other and with Admin.Stats.
class StatsCollectable final : public prometheus::Collectable {
 public:
  explicit StatsCollectable(std::function<core::Stats()> stats)
      : stats_(std::move(stats)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const core::Stats s = stats_();
    std::vector<prometheus::MetricFamily> out;
    // Every Stats field, in the proto's order; fields sharing a metric
    // name (the Acquire outcomes) become labelled samples of one family.
#define DOGPILED_STATS_METRIC(name, number) \
    Add(out, #name, number, s.name);
    DOGPILED_STATS_FIELDS(DOGPILED_STATS_METRIC)
#undef DOGPILED_STATS_METRIC
    return out;
  }

 private:
  const std::function<core::Stats()> stats_;
};

}  // namespace

MetricsObserver::MetricsObserver()
    : registry_(std::make_shared<prometheus::Registry>()) {
  auto& wait = prometheus::BuildHistogram()
                   .Name("dogpiled_wait_seconds")
                   .Help("How long parked Acquire and Lock calls waited")
                   .Register(*registry_);
  wait_seconds_ = &wait.Add({}, kSecondsBuckets);
  auto& creation =
      prometheus::BuildHistogram()
          .Name("dogpiled_creation_seconds")
          .Help("How long creator roles were held, by how they ended: "
                "published, or lost (abandoned, timed out, invalidated, "
                "session ended)")
          .Register(*registry_);
  creation_published_seconds_ =
      &creation.Add({{"result", "published"}}, kSecondsBuckets);
  creation_lost_seconds_ = &creation.Add({{"result", "lost"}}, kSecondsBuckets);
}

MetricsObserver::~MetricsObserver() = default;

void MetricsObserver::OnCreatorEnded(const std::string& /*registry*/,
                                     const std::string& /*key*/,
                                     int64_t held_ms, bool published) {
  (published ? creation_published_seconds_ : creation_lost_seconds_)
      ->Observe(Seconds(held_ms));
}

void MetricsObserver::OnWaitEnded(int64_t waited_ms) {
  wait_seconds_->Observe(Seconds(waited_ms));
}

core::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, const MetricsObserver& observer,
    std::function<core::Stats()> stats) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  try {
    // One worker thread: scrapes are rare and cheap.
    server->exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return core::Unavailable("metrics-listen " + listen + ": " + e.what());
  }
  const std::vector<int> ports = server->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return core::Unavailable("metrics-listen " + listen + ": not listening");
  }
  server->port_ = ports.front();
  server->histograms_ = observer.registry();
  server->stats_ = std::make_shared<StatsCollectable>(std::move(stats));
  server->exposer_->RegisterCollectable(server->histograms_);
  server->exposer_->RegisterCollectable(server->stats_);
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace dogpiled::daemon
