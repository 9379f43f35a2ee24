// Prometheus metrics for operators, served over HTTP on their own port.
//
// Two sources: durations (wait time, creation time) arrive as core events
// through MetricsObserver and go into histograms; gauges and counters are
// read from Coordinator::GetStats() at each scrape, so they can never drift
// from what the Admin.Stats RPC reports.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/observer.h"
#include "core/status.h"
#include "core/types.h"

namespace prometheus {
class Collectable;
class Exposer;
class Histogram;
class Registry;
}  // namespace prometheus

namespace dogpiled::daemon {

// Feeds the duration histograms. Thread-safe; quick enough to run under the
// core's lock (each event is one short, separately locked Observe).
class MetricsObserver final : public core::Observer {
 public:
  MetricsObserver();
  ~MetricsObserver() override;

  void OnCreatorEnded(const std::string& registry, const std::string& key,
                      int64_t held_ms, bool published) override;
  void OnWaitEnded(int64_t waited_ms) override;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  // Constant after construction; the histograms live in registry_.
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* wait_seconds_;
  prometheus::Histogram* creation_published_seconds_;
  prometheus::Histogram* creation_lost_seconds_;
};

// The HTTP endpoint: GET /metrics. Scrapes run on the server's own threads
// and call `stats` there. Stop it (destroy it) before whatever `stats` reads.
class MetricsServer {
 public:
  // Binds `listen` (HOST:PORT; port 0 picks a free one) and starts serving.
  static core::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen, const MetricsObserver& observer,
      std::function<core::Stats()> stats);
  ~MetricsServer();

  int port() const { return port_; }

 private:
  MetricsServer() = default;

  std::shared_ptr<prometheus::Registry> histograms_;
  std::shared_ptr<prometheus::Collectable> stats_;
  int port_ = 0;
  // Last, so it is destroyed first: no scrape runs once the rest is gone.
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace dogpiled::daemon
