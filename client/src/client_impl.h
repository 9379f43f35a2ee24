// The channel and stubs behind Client, shared by every Session, Dogpile and
// ReadWriteMutex made from it, so the channel outlives every call (see the
// gRPC 1.51 pitfall in docs/build-notes.md: never let a completion callback
// drop the last reference to a channel).
//
// Thread-safe: stubs and the channel may be used from any thread at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "dogpiled/client.h"
#include "dogpiled/name_registry.h"
#include "dogpiled/v1/admin.grpc.pb.h"
#include "dogpiled/v1/dogpile.grpc.pb.h"
#include "dogpiled/v1/rwmutex.grpc.pb.h"
#include "dogpiled/v1/sessions.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "src/error_details.h"
#include "src/flight.h"

namespace dogpiled::internal {

namespace v1 = ::dogpiled::v1;


class ClientImpl {
 public:
  explicit ClientImpl(ClientOptions options);
  ClientImpl(const ClientImpl&) = delete;
  ClientImpl& operator=(const ClientImpl&) = delete;

  const ClientOptions& options() const { return options_; }
  v1::Sessions::Stub& sessions() { return *sessions_; }
  v1::Dogpile::Stub& dogpile() { return *dogpile_; }
  v1::RWMutex::Stub& rwmutex() { return *rwmutex_; }
  v1::Admin::Stub& admin() { return *admin_; }
  // In-flight acquires of this process, by session and key.
  NameRegistry<Flight>& flights() { return flights_; }

  // Credentials for every call (the bearer token, if any).
  void Authorize(grpc::ClientContext& ctx) const;
  // Authorize, plus a deadline: the RPC timeout, and `wait` more for calls
  // that park on purpose.
  void Prepare(grpc::ClientContext& ctx,
               std::chrono::milliseconds wait =
                   std::chrono::milliseconds(0)) const;

  // One unary call with that deadline, its status mapped.
  template <typename Stub, typename Request, typename Response>
  Status Call(Stub& stub,
              grpc::Status (Stub::*method)(grpc::ClientContext*,
                                           const Request&, Response*),
              const Request& request, Response* response,
              std::chrono::milliseconds wait =
                  std::chrono::milliseconds(0)) const {
    grpc::ClientContext ctx;
    Prepare(ctx, wait);
    return FromGrpc((stub.*method)(&ctx, request, response));
  }

  // One unary call with an absolute deadline, its status mapped.
  template <typename Stub, typename Request, typename Response>
  Status CallUntil(Stub& stub,
                   grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                const Request&, Response*),
                   const Request& request, Response* response,
                   std::chrono::steady_clock::time_point deadline) const {
    grpc::ClientContext ctx;
    Authorize(ctx);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     (deadline - std::chrono::steady_clock::now()));
    return FromGrpc((stub.*method)(&ctx, request, response));
  }

  StatusOr<HealthStatus> CheckHealth(const std::string& service);
  StatusOr<PeekResult> Peek(const std::string& registry,
                            const std::string& key,
                            std::chrono::milliseconds expire);
  Status Invalidate(const std::string& registry, const std::string& key,
                    bool hard);

 private:
  // Constant after construction.
  const ClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<v1::Sessions::Stub> sessions_;
  const std::unique_ptr<v1::Dogpile::Stub> dogpile_;
  const std::unique_ptr<v1::RWMutex::Stub> rwmutex_;
  const std::unique_ptr<v1::Admin::Stub> admin_;
  const std::unique_ptr<grpc::health::v1::Health::Stub> health_;

  NameRegistry<Flight> flights_;
};

// "pid@hostname", the default client name.
std::string DefaultClientName();

}  // namespace dogpiled::internal
