// Stubs for one dogpiled daemon over several connections, and the setup
// steps scenarios share (sessions, stored values, stats). Thread-safe:
// gRPC stubs may be used from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dogpiled/v1/admin.grpc.pb.h"
#include "dogpiled/v1/dogpile.grpc.pb.h"
#include "dogpiled/v1/rwmutex.grpc.pb.h"
#include "dogpiled/v1/sessions.grpc.pb.h"

namespace dogpiled::bench {

class DogpiledClient {
 public:
  DogpiledClient(const std::string& target, int connections);

  // Stubs for client number `i`, spread round-robin over the connections.
  v1::Dogpile::Stub& dogpile(int64_t i) { return *dogpile_[Pick(i)]; }
  v1::RWMutex::Stub& rwmutex(int64_t i) { return *rwmutex_[Pick(i)]; }

  // Opens `n` sessions with a TTL (1 h) longer than any run, so no
  // keep-alive traffic muddies the figures. Exits on failure.
  std::vector<uint64_t> OpenSessions(int n);

  // Stores `value` under keys KeyName(first) .. KeyName(last - 1) of
  // `registry` by Acquire(CREATE) + Publish, `concurrency` at a time.
  void Store(const std::string& registry, int64_t first, int64_t last,
             const std::string& value, uint64_t session, int concurrency);

  v1::StatsResponse Stats();

 private:
  size_t Pick(int64_t i) const {
    return static_cast<size_t>(i) % dogpile_.size();
  }

  std::vector<std::unique_ptr<v1::Sessions::Stub>> sessions_;
  std::vector<std::unique_ptr<v1::Dogpile::Stub>> dogpile_;
  std::vector<std::unique_ptr<v1::RWMutex::Stub>> rwmutex_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

// Keys are short and fixed-width, like a typical cache key.
std::string KeyName(int64_t i);

// A registry name of this process's own, so that runs against one daemon
// never see each other's keys.
std::string RunRegistry(const std::string& base);

// The election operation: Acquire on a key with no value (answered CREATE)
// then Publish with the token. Usable as a closed-loop StartOp, where
// operation `index` elects for KeyName(first_key + index).
class Elections {
 public:
  Elections(DogpiledClient* client, std::string registry, std::string value,
            std::vector<uint64_t> sessions, int slots, int64_t first_key);
  ~Elections();

  void Start(int slot, int64_t index, std::function<void(bool, const std::string&)> done);

 private:
  struct Slot;

  DogpiledClient* const client_;
  const std::string registry_;
  const std::string value_;
  const std::vector<uint64_t> sessions_;
  const int64_t first_key_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace dogpiled::bench
