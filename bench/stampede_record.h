// What scenario 5 records about each client of a stampede, and the figures
// derived from it. Each client's slot is written only by that client's
// flow; the shared counters are atomic. Figures() runs after all stopped.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace dogpiled::bench {

class StampedeRecord {
 public:
  explicit StampedeRecord(int clients);

  void Start();  // t0: the stampede begins now
  // Client `c` sends a request to the coordinator (dogpiled or redis).
  void Request(int c);
  // Client `c` runs the creator (the expensive backend call).
  void CreatorCall() { creator_calls_.fetch_add(1); }
  // A creator is about to write the new value (dogpiled Publish, redis SET).
  void Publishing();
  // Client `c` has the value now; `creator` if it made it itself.
  void Ready(int c, bool creator);
  void Fail(const std::string& error);

  int64_t t0_ns() const { return t0_ns_; }
  nlohmann::json Figures(int64_t ended_ns);

 private:
  struct Client {
    std::vector<int64_t> requests_ns;
    int64_t ready_ns = 0;
    bool creator = false;
  };

  int64_t t0_ns_ = 0;
  std::vector<Client> clients_;
  std::atomic<int64_t> creator_calls_{0};
  std::atomic<int64_t> publish_ns_{0};  // the first value write
  std::mutex mutex_;
  int64_t errors_ = 0;  // guarded by mutex_
  std::string first_error_;
};

}  // namespace dogpiled::bench
