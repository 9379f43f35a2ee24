#include "service/auth.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/sha.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <string_view>
#include <utility>

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

// The bearer token of the call, if it sent one.
std::optional<std::string> BearerToken(const grpc::CallbackServerContext* ctx) {
  const auto& metadata = ctx->client_metadata();
  const auto header = metadata.find("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header == metadata.end() ||
      !header->second.starts_with(
          grpc::string_ref(kBearer.data(), kBearer.size()))) {
    return std::nullopt;
  }
  return std::string(header->second.data() + kBearer.size(),
                     header->second.size() - kBearer.size());
}

// SHA-256 of a token, first 16 bytes in hex: enough to tell tokens apart,
// and the token itself is never kept with a session.
std::string TokenHash(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

std::string Trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) {
    return "";
  }
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

Auth::Auth(AuthOptions options) : options_(std::move(options)) {
  for (const auto& [registry, token] : options_.registry_tokens) {
    token_hashes_.insert(TokenHash(token));
  }
}

std::string CanonicalIdentity(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string out;
  for (const std::string& name : names) {
    out += std::to_string(name.size()) + ":" + name + ";";
  }
  return out;
}

core::StatusOr<std::string> Auth::Identity(
    const grpc::CallbackServerContext* ctx) const {
  if (options_.mutual_tls) {
    const auto auth = ctx->auth_context();
    std::vector<std::string> names;
    if (auth) {
      // Typed names first, so "DNS:a" and "URI:a" are not one identity.
      for (const auto& [property, kind] :
           {std::pair{GRPC_PEER_DNS_PROPERTY_NAME, "dns="},
            std::pair{GRPC_PEER_URI_PROPERTY_NAME, "uri="},
            std::pair{GRPC_PEER_EMAIL_PROPERTY_NAME, "email="},
            std::pair{GRPC_PEER_IP_PROPERTY_NAME, "ip="}}) {
        for (const auto& value : auth->FindPropertyValues(property)) {
          names.push_back(kind + std::string(value.data(), value.size()));
        }
      }
      if (names.empty()) {
        for (const auto& value :
             auth->FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
          names.push_back("san=" + std::string(value.data(), value.size()));
        }
      }
      if (names.empty()) {
        for (const auto& value :
             auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
          if (!value.empty()) {
            names.push_back("cn=" + std::string(value.data(), value.size()));
          }
        }
      }
    }
    if (names.empty()) {
      // Empty would mean "anyone": a certificate must name someone.
      return core::Status(core::Code::kUnauthenticated,
                          "certificate: the client certificate has neither a "
                          "subject alternative name nor a common name")
          .WithReason(std::string(core::reason::kCertificateWithoutIdentity),
                      {{"field", "certificate"}});
    }
    return "x509:" + CanonicalIdentity(std::move(names));
  }
  if (std::optional<std::string> token = BearerToken(ctx)) {
    std::string hash = TokenHash(*token);
    if (token_hashes_.count(hash) != 0) {
      return "token:" + hash;
    }
  }
  return std::string();
}

std::string Auth::ClientKey(const grpc::CallbackServerContext* ctx,
                            const std::string& identity) {
  if (!identity.empty()) {
    return identity;
  }
  const std::string peer = ctx->peer();  // "ipv4:127.0.0.1:54321"
  const auto colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

grpc::Status Auth::CheckRegistry(const grpc::CallbackServerContext* ctx,
                                 const std::string& registry) const {
  if (options_.mutual_tls) {
    if (core::StatusOr<std::string> id = Identity(ctx); !id.ok()) {
      return ToGrpc(id.status());
    }
  }
  const auto wanted = options_.registry_tokens.find(registry);
  if (wanted == options_.registry_tokens.end()) {
    return grpc::Status::OK;
  }
  std::optional<std::string> given = BearerToken(ctx);
  if (!given) {
    return ToGrpc(core::Status(core::Code::kUnauthenticated,
                               "authorization: registry '" + registry +
                                   "' requires a bearer token")
                      .WithReason(std::string(core::reason::kTokenMissing),
                                  {{"field", "authorization"},
                                   {"registry", registry}}));
  }
  if (!SameSecret(*given, wanted->second)) {
    return ToGrpc(core::Status(core::Code::kPermissionDenied,
                               "authorization: wrong token for registry '" +
                                   registry + "'")
                      .WithReason(std::string(core::reason::kTokenRefused),
                                  {{"field", "authorization"},
                                   {"registry", registry}}));
  }
  return grpc::Status::OK;
}

grpc::Status Auth::CheckSession(const grpc::CallbackServerContext* ctx,
                                core::SessionId session,
                                core::Coordinator* core) const {
  core::StatusOr<std::string> identity = Identity(ctx);
  if (!identity.ok()) {
    return ToGrpc(identity.status());
  }
  return ToGrpc(core->CheckOwner(session, identity.value()));
}

grpc::Status Auth::Check(const grpc::CallbackServerContext* ctx,
                         const std::string& registry, core::SessionId session,
                         core::Coordinator* core) const {
  if (grpc::Status s = CheckRegistry(ctx, registry); !s.ok()) {
    return s;
  }
  return CheckSession(ctx, session, core);
}

grpc::Status Auth::CheckAdmin(const grpc::CallbackServerContext* ctx) const {
  if (options_.admin_token.empty() && options_.registry_tokens.empty()) {
    return grpc::Status::OK;  // nothing is protected, so nothing leaks
  }
  std::optional<std::string> given = BearerToken(ctx);
  if (!options_.admin_token.empty() && given &&
      SameSecret(*given, options_.admin_token)) {
    return grpc::Status::OK;
  }
  const std::string why =
      options_.admin_token.empty()
          ? "this daemon protects registries and has no --admin-token-file, "
            "so its daemon-wide figures are not served"
          : "daemon-wide figures need the admin token";
  return {given ? grpc::StatusCode::PERMISSION_DENIED
                : grpc::StatusCode::UNAUTHENTICATED,
          "authorization: " + why};
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

core::StatusOr<std::string> ReadAdminToken(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  if (!in || !std::getline(in, token) || Trim(token).empty()) {
    return core::InvalidArgument("admin-token-file: cannot read a token from " +
                                 path);
  }
  return Trim(token);
}

}  // namespace dogpiled::service
