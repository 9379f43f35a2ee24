// Who is calling, and whether they may touch a registry, a session or the
// daemon-wide figures. docs/security.md is the model this enforces.
//
// - The caller's identity is its client certificate's (with mutual TLS),
//   else the registry token it presents (kept as a hash, never the token),
//   else "": the anonymous tenant. A token that protects no registry names
//   no one, so nobody can mint tenants to dodge quotas.
// - A registry listed in the token table requires the metadata
//   "authorization: Bearer <token>": none gets UNAUTHENTICATED, a wrong one
//   PERMISSION_DENIED. Other registries are open.
// - A session is bound to the identity that opened it; a call naming it
//   with another identity (the anonymous one included) gets
//   PERMISSION_DENIED.
// - Admin.Stats, on a daemon that protects anything, is for the admin
//   token's holder only.
//
// Constant after construction; thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/coordinator.h"

namespace dogpiled::service {

struct AuthOptions {
  std::map<std::string, std::string> registry_tokens;  // registry -> token
  std::string admin_token;  // "" : none
  // Mutual TLS: every caller must present a certificate that names someone.
  bool mutual_tls = false;
};

class Auth {
 public:
  Auth() = default;
  explicit Auth(AuthOptions options);

  // The caller's identity: "x509:" + its certificate's names, "token:" +
  // a hash of its registry token, or "" (anonymous). UNAUTHENTICATED, with
  // mutual TLS, for a certificate with no usable identity.
  core::StatusOr<std::string> Identity(
      const grpc::CallbackServerContext* ctx) const;
  // Whom the per-client session cap counts against: the identity, else the
  // peer's address without its port.
  static std::string ClientKey(const grpc::CallbackServerContext* ctx,
                               const std::string& identity);

  grpc::Status CheckRegistry(const grpc::CallbackServerContext* ctx,
                             const std::string& registry) const;
  // The caller's identity must be the one that opened `session`.
  grpc::Status CheckSession(const grpc::CallbackServerContext* ctx,
                            core::SessionId session,
                            core::Coordinator* core) const;
  // CheckRegistry, then CheckSession.
  grpc::Status Check(const grpc::CallbackServerContext* ctx,
                     const std::string& registry, core::SessionId session,
                     core::Coordinator* core) const;
  // Admin.Stats: open on a daemon that protects nothing, else only for the
  // admin token.
  grpc::Status CheckAdmin(const grpc::CallbackServerContext* ctx) const;

 private:
  const AuthOptions options_;
  // Hashes of the registry tokens: a caller presenting one is that tenant.
  std::set<std::string> token_hashes_;
};

// A certificate's names as one unambiguous string: each name is prefixed by
// its kind and length, and the list is sorted, so ["a", "b"] and ["a,b"]
// differ and the order in the certificate does not matter. "" if `names`
// is empty.
std::string CanonicalIdentity(std::vector<std::string> names);

// Reads "registry=token" lines ('#' starts a comment) into a table.
core::StatusOr<std::map<std::string, std::string>> ReadRegistryTokens(
    const std::string& path);
// Reads a file holding one token (surrounding whitespace ignored).
core::StatusOr<std::string> ReadAdminToken(const std::string& path);

}  // namespace dogpiled::service
