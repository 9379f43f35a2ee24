// Who is calling, and whether they may touch a registry or a session.
//
// - A registry listed in the token table requires the metadata
//   "authorization: Bearer <token>": none gets UNAUTHENTICATED, a wrong one
//   PERMISSION_DENIED. Other registries are open.
// - With mutual TLS, a session is bound to the identity (certificate
//   subject) that opened it: another identity gets PERMISSION_DENIED.
//
// Constant after construction; thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <string>

#include "core/coordinator.h"

namespace dogpiled::service {

class Auth {
 public:
  Auth() = default;
  explicit Auth(std::map<std::string, std::string> registry_tokens)
      : registry_tokens_(std::move(registry_tokens)) {}

  // The caller's authenticated identity (its TLS client certificate's
  // identity), or "" without one.
  static std::string Identity(const grpc::CallbackServerContext* ctx);
  // Whom the per-client session cap counts against: the identity, else the
  // peer's address without its port.
  static std::string ClientKey(const grpc::CallbackServerContext* ctx);

  grpc::Status CheckRegistry(const grpc::CallbackServerContext* ctx,
                             const std::string& registry) const;
  // CheckRegistry, then the session's owner.
  grpc::Status Check(const grpc::CallbackServerContext* ctx,
                     const std::string& registry, core::SessionId session,
                     core::Coordinator* core) const;

 private:
  const std::map<std::string, std::string> registry_tokens_;
};

// Reads "registry=token" lines ('#' starts a comment) into a table.
core::StatusOr<std::map<std::string, std::string>> ReadRegistryTokens(
    const std::string& path);

}  // namespace dogpiled::service
