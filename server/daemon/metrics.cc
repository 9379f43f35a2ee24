#include "daemon/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <exception>
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

// Gauges and counters, read from one Stats snapshot per scrape so that they
// agree with each other and with Admin.Stats.
class StatsCollectable final : public prometheus::Collectable {
 public:
  explicit StatsCollectable(std::function<core::Stats()> stats)
      : stats_(std::move(stats)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    const core::Stats s = stats_();
    std::vector<prometheus::MetricFamily> out;
    auto one = [&out](const char* name, const char* help, MetricType type,
                      uint64_t value) {
      out.push_back(Family(name, help, type));
      out.back().metric.push_back(Sample(value, type));
    };
    const MetricType gauge = MetricType::Gauge;
    const MetricType counter = MetricType::Counter;
    one("dogpiled_sessions", "Open sessions", gauge, s.sessions);
    one("dogpiled_registries", "Registries in use", gauge, s.registries);
    one("dogpiled_entries", "Live entries over all registries", gauge,
        s.entries);
    one("dogpiled_parked_waiters", "Parked Acquire and Lock calls", gauge,
        s.waiters);
    one("dogpiled_stored_bytes", "Bytes of stored values, keys included",
        gauge, s.stored_bytes);

    out.push_back(Family("dogpiled_acquires_total",
                         "Acquire calls by the outcome they returned",
                         counter));
    const std::pair<const char*, uint64_t> outcomes[] = {
        {"fresh", s.acquires_fresh},
        {"stale", s.acquires_stale},
        {"create", s.acquires_create},
        {"not_ready", s.acquires_not_ready}};
    for (const auto& [outcome, value] : outcomes) {
      out.back().metric.push_back(Sample(value, counter, {{"outcome", outcome}}));
    }
    one("dogpiled_publishes_total", "Accepted Publish calls", counter,
        s.publishes);
    one("dogpiled_abandons_total", "Accepted Abandon calls", counter,
        s.abandons);
    one("dogpiled_fencing_rejections_total",
        "Publish, Abandon or Unlock refused for a token that lost its grant",
        counter, s.fencing_rejections);
    one("dogpiled_session_expiries_total", "Sessions ended by their TTL",
        counter, s.session_expiries);
    one("dogpiled_creation_timeouts_total",
        "Creator roles lost to creation_timeout", counter,
        s.creation_timeouts);
    one("dogpiled_evictions_total", "Values dropped for the memory budget",
        counter, s.evictions);
    one("dogpiled_lock_grants_total", "RWMutex grants, read and write",
        counter, s.lock_grants);
    one("dogpiled_early_refreshes_total", "CREATE handed out early by XFetch",
        counter, s.early_refreshes);
    one("dogpiled_wait_timeouts_total", "Parked calls whose wait ran out",
        counter, s.wait_timeouts);
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
