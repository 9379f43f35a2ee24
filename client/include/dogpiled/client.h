// A connection to one dogpiled daemon.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dogpiled/export.h"
#include "dogpiled/status.h"
#include "dogpiled/v1/stats_fields.inc"

namespace dogpiled {

namespace internal {
class ClientImpl;
}  // namespace internal

// Transport security. Off by default (the daemon serves plaintext today);
// the fields are the usual gRPC SSL credentials, in PEM text.
struct TlsOptions {
  bool enabled = false;
  std::string root_certs_pem{};   // empty: the system roots
  std::string cert_chain_pem{};   // client certificate, for mutual TLS
  std::string private_key_pem{};  // its key
  std::string server_name_override{};  // expect this name in its certificate
};

// Every member has a default (see DogpileOptions).
struct ClientOptions {
  // HOST:PORT, or any gRPC target. A replicated group (docs/replication.md):
  // its members as "H1:P1,H2:P2,H3:P3", or one NAME:PORT that resolves to
  // them all (not just to loopback). Calls then go to the leader: a
  // follower's refusal or a member that is down sends them, unchanged
  // (with their request_id), to the next member within their deadline, and
  // sessions renew on whichever member leads.
  std::string target = "127.0.0.1:7420";
  TlsOptions tls{};
  // Sent as "authorization: Bearer <token>" with every call, for registries
  // the daemon protects (--registry-token-file). Empty: none. Use one
  // Client per token if registries need different ones.
  std::string bearer_token{};
  // Deadline of every call that does not wait on purpose (Peek, Publish,
  // Stats, ...). Waiting calls get their wait plus this.
  std::chrono::milliseconds rpc_timeout{10'000};
  // Sent with Session::Open for the daemon's logs; empty: "pid@host".
  std::string client_name{};
  // Near-cache (docs/near-cache.md): > 0 keeps FRESH values of
  // Dogpile::acquire in process memory, up to this many bytes per Session
  // (key + value + about 160 bytes each, least recently used evicted),
  // served without a round trip while the session's watch is up. Coherent:
  // once an Invalidate or Publish has returned, no read here returns the
  // old value as FRESH. 0 (the default): off.
  uint64_t near_cache_bytes = 0;
  // Opt-in, with the near-cache: when the daemon cannot be reached
  // (UNAVAILABLE, DEADLINE_EXCEEDED), Dogpile::acquire returns a value the
  // near-cache still has up to this long past its expiry, as
  // ValueSource::kStale, instead of failing. 0 (the default): fail.
  std::chrono::milliseconds max_stale_on_error{0};
  // Opt-in: when the daemon cannot be reached and no stale value is allowed
  // (above), Dogpile::acquire runs its creator in this process and returns
  // the value as ValueSource::kCreatedOffline, storing nothing: every
  // process may then run its creator at once (the dogpile the daemon
  // exists to prevent), so choose it only where failing is worse. false
  // (the default): acquire throws dogpiled::Error (UNAVAILABLE or
  // DEADLINE_EXCEEDED). The Python SDK's Client(fail_open=True) is the same.
  bool fail_open = false;
};

// The daemon's counters; see proto/dogpiled/v1/admin.proto for each field.
struct Stats {
  // One member per field of dogpiled.v1.StatsResponse, same name, same
  // order (generated from the proto; see admin.proto for their meaning).
#define DOGPILED_STATS_MEMBER(name, number) uint64_t name = 0;
  DOGPILED_STATS_FIELDS(DOGPILED_STATS_MEMBER)
#undef DOGPILED_STATS_MEMBER
};

// A replicated group as the member asked sees it (Admin.Cluster; see
// proto/dogpiled/v1/admin.proto and docs/replication.md).
struct ClusterMember {
  uint64_t id = 0;
  std::string raft_address;
  std::string client_address;  // "" until it has led
  std::string role;            // "leader", "follower", "candidate"
  bool voter = true;           // false while an added member catches up
};
struct Cluster {
  std::vector<ClusterMember> members;
  uint64_t self_id = 0;
  uint64_t leader_id = 0;  // 0: none known
  std::string leader_client_address;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  bool serving = false;  // the member asked leads and serves
};

// What Peek saw; it takes no role and touches no line.
struct PeekResult {
  bool has_value = false;
  std::string value{};
  double created_time = 0;  // epoch seconds, daemon-stamped by default
  bool is_expired = true;   // by the expire given to Peek, or invalidated
  bool creating = false;    // some session holds the creator role
};

// grpc.health.v1 answers.
enum class HealthStatus { kUnknown, kServing, kNotServing, kServiceUnknown };
DOGPILED_EXPORT const char* HealthStatusName(HealthStatus status);

// Owns the channel to the daemon. Sessions, Dogpiles and ReadWriteMutexes
// made from it share that channel and keep it alive, so the Client may be
// destroyed before them.
//
// Thread-safe: every method may be called from any thread at once. A
// moved-from Client may only be destroyed or assigned to.
class DOGPILED_EXPORT Client {
 public:
  explicit Client(ClientOptions options);
  explicit Client(const std::string& target);
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const;

  StatusOr<Stats> GetStats() const;
  // FAILED_PRECONDITION (reason NOT_REPLICATED) from a single node.
  StatusOr<Cluster> GetCluster() const;
  // Replicated mode: changes the group's members (Admin.AddMember and
  // RemoveMember in proto/dogpiled/v1/admin.proto; docs/operations.md).
  // Answered by the leader once the change is committed, with the group
  // as it now is. AddMember's member must be running, started with
  // --join; it is caught up first, so the call may take seconds: it waits
  // up to the RPC timeout plus `wait`.
  StatusOr<Cluster> AddMember(
      uint64_t id, const std::string& raft_address,
      std::chrono::milliseconds wait = std::chrono::seconds(10)) const;
  StatusOr<Cluster> RemoveMember(
      uint64_t id,
      std::chrono::milliseconds wait = std::chrono::seconds(5)) const;
  // Keys here and everywhere in the SDK are bytes of anything (1..1024 by
  // default), UTF-8 or not: a std::string is sent as its bytes.
  // Reads a key without taking any role. expire decides is_expired the way
  // Acquire does: > 0 that long after created_time, 0 never, < 0 always.
  StatusOr<PeekResult> Peek(const std::string& registry,
                            const std::string& key,
                            std::chrono::milliseconds expire =
                                std::chrono::milliseconds(0)) const;
  // An empty key invalidates the whole registry. Soft keeps values as stale
  // fallbacks; hard makes them absent.
  Status Invalidate(const std::string& registry, const std::string& key,
                    bool hard) const;
  // grpc.health.v1.Health/Check; "" asks about the whole daemon.
  StatusOr<HealthStatus> CheckHealth(const std::string& service = "") const;

 private:
  friend class Session;
  std::shared_ptr<internal::ClientImpl> impl_;
};

}  // namespace dogpiled
