#include "service/auth.h"

#include <fstream>

#include "core/errors.h"
#include "core/validation.h"
#include "service/status_map.h"

namespace dogpiled::service {
namespace {

// Compares secrets in time independent of where they differ.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

std::string Trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) {
    return "";
  }
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

std::string Auth::Identity(const grpc::CallbackServerContext* ctx) {
  const auto auth = ctx->auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) {
    return "";
  }
  std::string identity;
  for (const auto& part : auth->GetPeerIdentity()) {
    identity += (identity.empty() ? "" : ",") +
                std::string(part.data(), part.size());
  }
  return identity;
}

std::string Auth::ClientKey(const grpc::CallbackServerContext* ctx) {
  std::string identity = Identity(ctx);
  if (!identity.empty()) {
    return identity;
  }
  const std::string peer = ctx->peer();  // "ipv4:127.0.0.1:54321"
  const auto colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

grpc::Status Auth::CheckRegistry(const grpc::CallbackServerContext* ctx,
                                 const std::string& registry) const {
  const auto wanted = registry_tokens_.find(registry);
  if (wanted == registry_tokens_.end()) {
    return grpc::Status::OK;
  }
  const auto& metadata = ctx->client_metadata();
  const auto header = metadata.find("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header == metadata.end() ||
      !header->second.starts_with(grpc::string_ref(kBearer.data(),
                                                   kBearer.size()))) {
    return ToGrpc(core::Status(core::Code::kUnauthenticated,
                               "authorization: registry '" + registry +
                                   "' requires a bearer token")
                      .WithReason(std::string(core::reason::kTokenMissing),
                                  {{"field", "authorization"},
                                   {"registry", registry}}));
  }
  const std::string given(header->second.data() + kBearer.size(),
                          header->second.size() - kBearer.size());
  if (!SameSecret(given, wanted->second)) {
    return ToGrpc(core::Status(core::Code::kPermissionDenied,
                               "authorization: wrong token for registry '" +
                                   registry + "'")
                      .WithReason(std::string(core::reason::kTokenRefused),
                                  {{"field", "authorization"},
                                   {"registry", registry}}));
  }
  return grpc::Status::OK;
}

grpc::Status Auth::Check(const grpc::CallbackServerContext* ctx,
                         const std::string& registry, core::SessionId session,
                         core::Coordinator* core) const {
  if (grpc::Status s = CheckRegistry(ctx, registry); !s.ok()) {
    return s;
  }
  return ToGrpc(core->CheckOwner(session, Identity(ctx)));
}

core::StatusOr<std::map<std::string, std::string>> ReadRegistryTokens(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return core::InvalidArgument("registry-token-file: cannot read " + path);
  }
  std::map<std::string, std::string> tokens;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = Trim(line.substr(0, line.find('#')));
    if (line.empty()) {
      continue;
    }
    const auto eq = line.find('=');
    const std::string registry = Trim(line.substr(0, eq));
    const std::string token =
        eq == std::string::npos ? "" : Trim(line.substr(eq + 1));
    if (token.empty() || !core::CheckRegistry(registry).ok()) {
      return core::InvalidArgument(
          "registry-token-file: line " + std::to_string(number) +
          " is not registry=token");
    }
    tokens[registry] = token;
  }
  return tokens;
}

}  // namespace dogpiled::service
