// The channels and stubs behind Client (one daemon, or a group's members),
// shared by every Session, Dogpile and ReadWriteMutex made from it, so the
// channels outlive every call (see the gRPC 1.51 pitfall in
// docs/build-notes.md: never let a completion callback drop the last
// reference to a channel).
//
// Thread-safe: every method may be called from any thread at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "dogpiled/client.h"
#include "dogpiled/name_registry.h"
#include "src/error_details.h"
#include "src/flight.h"
#include "src/members.h"

namespace dogpiled::internal {

class ClientImpl {
 public:
  explicit ClientImpl(ClientOptions options);
  ClientImpl(const ClientImpl&) = delete;
  ClientImpl& operator=(const ClientImpl&) = delete;

  const ClientOptions& options() const { return options_; }
  // The daemon, or the group's members (members.h).
  Members& members() { return members_; }
  // In-flight acquires of this process, by session and key.
  NameRegistry<Flight>& flights() { return flights_; }

  // Credentials for every call (the bearer token, if any).
  void Authorize(grpc::ClientContext& ctx) const;

  // One unary call, its status mapped, with the RPC timeout as deadline,
  // plus `wait` for calls that park on purpose.
  template <typename Stub, typename Request, typename Response>
  Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                           const Request&, Response*),
              const Request& request, Response* response,
              std::chrono::milliseconds wait =
                  std::chrono::milliseconds(0)) {
    return CallUntil(method, request, response,
                     std::chrono::steady_clock::now() + options_.rpc_timeout +
                         wait);
  }

  // One unary call with an absolute deadline, its status mapped. In a
  // group it goes to the member believed to lead; an UNAVAILABLE (a
  // follower naming the leader, a member down) sends it, unchanged, to the
  // next one, pausing between rounds that found no leader, until the
  // deadline. Unchanged means with its request_id, so a change that did
  // commit before its answer was lost is answered again, not made twice.
  // One daemon: one try, as before; but a follower's refusal is waited
  // out and followed like a group's.
  template <typename Stub, typename Request, typename Response>
  Status CallUntil(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                const Request&, Response*),
                   const Request& request, Response* response,
                   std::chrono::steady_clock::time_point deadline) {
    std::chrono::milliseconds pause = kFirstRoundPause;
    int redirects = 0;  // in a row: stale leaders may name each other
    for (;;) {
      Member& member = members_.Current();
      grpc::ClientContext ctx;
      Authorize(ctx);
      ctx.set_deadline(std::chrono::system_clock::now() +
                       (deadline - std::chrono::steady_clock::now()));
      Status status = FromGrpc(
          (member.stub<Stub>().*method)(&ctx, request, response));
      if (status.ok()) {
        return status;
      }
      const bool at_once = members_.NoteFailure(member, status);
      // One daemon that is not a follower: one try, as before.
      if (status.code() != StatusCode::kUnavailable ||
          (!at_once && !members_.grouped() &&
           status.reason() != "NOT_LEADER")) {
        return status;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        return status;
      }
      if (at_once && ++redirects <= kMaxRedirects) {
        continue;
      }
      redirects = 0;
      if (now + pause >= deadline) {
        return status;
      }
      std::this_thread::sleep_for(pause);  // between rounds, not ordering
      pause = std::min(pause * 2, kMaxRoundPause);
    }
  }
  static constexpr std::chrono::milliseconds kFirstRoundPause{50};
  static constexpr std::chrono::milliseconds kMaxRoundPause{250};
  static constexpr int kMaxRedirects = 4;

  StatusOr<HealthStatus> CheckHealth(const std::string& service);
  StatusOr<PeekResult> Peek(const std::string& registry,
                            const std::string& key,
                            std::chrono::milliseconds expire);
  Status Invalidate(const std::string& registry, const std::string& key,
                    bool hard);

 private:
  // Constant after construction.
  const ClientOptions options_;
  Members members_;

  NameRegistry<Flight> flights_;
};

// "pid@hostname", the default client name.
std::string DefaultClientName();

}  // namespace dogpiled::internal
