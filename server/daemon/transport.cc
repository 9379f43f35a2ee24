#include "daemon/transport.h"

#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/errors.h"
#include "service/parse_interceptor.h"

namespace dogpiled::daemon {
namespace {

std::optional<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

}  // namespace

core::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const Config& config) {
  if (config.tls_cert.empty() && config.tls_key.empty()) {
    if (!config.tls_client_ca.empty()) {
      return core::InvalidArgument("tls-client-ca: needs --tls-cert too");
    }
    return grpc::InsecureServerCredentials();
  }
  auto cert = ReadPem(config.tls_cert);
  auto key = ReadPem(config.tls_key);
  if (!cert || !key) {
    return core::InvalidArgument(
        "tls-cert/tls-key: both must name readable PEM files");
  }
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!config.tls_client_ca.empty()) {
    auto ca = ReadPem(config.tls_client_ca);
    if (!ca) {
      return core::InvalidArgument("tls-client-ca: cannot read " +
                                   config.tls_client_ca);
    }
    options.pem_root_certs = *ca;
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

void LimitTransport(const Config& config, grpc::ServerBuilder& builder) {
  const auto as_int = [](int64_t v) {
    return static_cast<int>(
        std::min<int64_t>(v, std::numeric_limits<int>::max()));
  };
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             as_int(config.max_streams_per_connection));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             as_int(config.keepalive_time_ms));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             as_int(config.keepalive_timeout_ms));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // gRPC stops pinging after two pings without data by default; a stalled
  // reader sends none, and must still be found out.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // The SDKs ping every second, to find out a member that hangs (SIGSTOP,
  // a partition) and go elsewhere; gRPC's default would cut them off as
  // abusive. Half that, for their timers' jitter.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  if (config.max_connection_idle_ms > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               as_int(config.max_connection_idle_ms));
  }
  grpc::ResourceQuota quota("dogpiled");
  quota.Resize(static_cast<size_t>(config.grpc_memory_bytes));
  quota.SetMaxThreads(as_int(config.grpc_max_threads));
  builder.SetResourceQuota(quota);
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(service::MakeParseErrorInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
}

}  // namespace dogpiled::daemon
