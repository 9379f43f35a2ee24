// Bounds the bytes of answers that wait on their reader.
//
// An answer leaves the daemon only as fast as its client reads it: one that
// advertises a zero HTTP/2 window and sends many Peeks for a large value
// would otherwise make the daemon hold a copy of the value per call, without
// limit. Each answer that carries a value reserves its size here until gRPC
// is done with the call (OnDone: sent, or the call was cancelled or its
// connection cut). Past the per-connection or the total limit, a new call is
// refused with RESOURCE_EXHAUSTED (the client is not reading); the answer of
// a call that was already waiting (a parked Acquire answered by a Publish)
// is queued instead, holding the shared value and no copy, and sent once
// earlier answers are done, so 1,000 waiters on one connection all get a
// 1 MiB value.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/thread_annotations.h"

namespace dogpiled::service {

class ResponseBudget;

// One answer's reservation, released when it is destroyed (with its
// reactor, once gRPC is done with the call). Not thread-safe: owned by one
// reactor.
class Reservation {
 public:
  Reservation() = default;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation();
  // Reserves `bytes` on `peer`; false if the budget refuses. At most once.
  bool Take(ResponseBudget* budget, std::string peer, uint64_t bytes);
  // Reserves `bytes` on `peer` and then runs `send`: at once if the budget
  // has room, else later, on the thread whose release made room. At most
  // once, instead of Take.
  void Queue(ResponseBudget* budget, std::string peer, uint64_t bytes,
             std::function<void()> send);

 private:
  ResponseBudget* budget_ = nullptr;
  std::string peer_;
  uint64_t bytes_ = 0;
};

class ResponseBudget {
 public:
  // 0 turns a limit off.
  ResponseBudget(uint64_t per_connection, uint64_t total)
      : per_connection_(per_connection), total_limit_(total) {}

  // Reserves `bytes` for an answer on connection `peer` (gRPC's peer
  // string, one per connection); false, reserving nothing, if that would
  // pass a limit. The first answer of a connection (and of the daemon) is
  // always allowed, so a value larger than a limit can still be read.
  bool Reserve(const std::string& peer, uint64_t bytes);
  // Reserves as Reserve does, waiting for room instead of refusing: runs
  // `send` once reserved. Queued answers of one connection leave in order.
  void ReserveOrQueue(const std::string& peer, uint64_t bytes,
                      std::function<void()> send);
  void Release(const std::string& peer, uint64_t bytes);
  // True when `peer` (or the daemon) is already at its limit: any answer
  // with a value would be refused, so a handler can refuse before it copies
  // one.
  bool Exhausted(const std::string& peer);

  uint64_t per_connection() const { return per_connection_; }
  uint64_t total_limit() const { return total_limit_; }

 private:
  struct Queued {
    uint64_t bytes;
    std::function<void()> send;
  };
  bool FitsLocked(const std::string& peer, uint64_t bytes);  // with mu_ held
  void TakeLocked(const std::string& peer, uint64_t bytes);  // with mu_ held

  const uint64_t per_connection_;
  const uint64_t total_limit_;
  std::mutex mu_;
  uint64_t total_ = 0;
  std::unordered_map<std::string, uint64_t> by_peer_;
  // Answers waiting for room, by connection, oldest first.
  std::map<std::string, std::deque<Queued>> queued_;
};

}  // namespace dogpiled::service
