#include "stats.h"

#include <algorithm>
#include <cmath>

namespace dogpiled::bench {
namespace {

double QuantileUs(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) {
    return 0;
  }
  const double n = static_cast<double>(sorted.size());
  const double rank = std::clamp(std::ceil(q * n) - 1, 0.0, n - 1);
  return static_cast<double>(sorted[static_cast<size_t>(rank)]) / 1e3;
}

}  // namespace

nlohmann::json Summarize(std::vector<int64_t>& latencies_ns) {
  std::sort(latencies_ns.begin(), latencies_ns.end());
  nlohmann::json out;
  out["count"] = latencies_ns.size();
  if (latencies_ns.empty()) {
    return out;
  }
  double sum = 0;
  for (int64_t v : latencies_ns) {
    sum += static_cast<double>(v);
  }
  out["mean_us"] = sum / static_cast<double>(latencies_ns.size()) / 1e3;
  out["p50_us"] = QuantileUs(latencies_ns, 0.50);
  out["p90_us"] = QuantileUs(latencies_ns, 0.90);
  out["p99_us"] = QuantileUs(latencies_ns, 0.99);
  out["p999_us"] = QuantileUs(latencies_ns, 0.999);
  out["max_us"] = static_cast<double>(latencies_ns.back()) / 1e3;
  out["min_us"] = static_cast<double>(latencies_ns.front()) / 1e3;
  // CDF: 100 even steps, then the tail 1 - 10^-k in finer steps.
  nlohmann::json cdf = nlohmann::json::array();
  std::vector<double> qs;
  for (int i = 0; i <= 100; ++i) {
    qs.push_back(i / 100.0);
  }
  for (double k = 2.0; k <= 4.0; k += 0.05) {
    qs.push_back(1.0 - std::pow(10.0, -k));
  }
  std::sort(qs.begin(), qs.end());
  for (double q : qs) {
    cdf.push_back({QuantileUs(latencies_ns, q), q});
  }
  out["cdf"] = std::move(cdf);
  return out;
}

void Append(std::vector<int64_t>& to, const std::vector<int64_t>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace dogpiled::bench
