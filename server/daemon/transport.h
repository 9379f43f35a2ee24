// How the daemon's gRPC server meets its clients: credentials from the
// --tls-* flags, and the limits on what connections may make it hold.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "core/status.h"
#include "daemon/config.h"

namespace dogpiled::daemon {

// Plain, TLS, or mutual TLS, from the --tls-* flags.
core::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const Config& config);

// What one connection, and all of them, may make the daemon hold: streams,
// gRPC's own buffers and threads, and pings that cut off a client that
// stops reading (its parked answers are then released). Answers carrying
// values are bounded by the service's ResponseBudget.
void LimitTransport(const Config& config, grpc::ServerBuilder& builder);

}  // namespace dogpiled::daemon
