// Reads the daemon's structured error (google.rpc.Status in the
// grpc-status-details-bin trailer: ErrorInfo, RetryInfo) into an SDK
// Status.
//
// The google.rpc messages are read through a private descriptor pool built
// from descriptors embedded at build time, not through generated code: the
// process-wide generated pool would clash with an application's own
// google.rpc code. Thread-safe: the pool is built once, then only read.
#pragma once

#include <grpcpp/support/status.h>

#include "dogpiled/status.h"

namespace dogpiled::internal {

// The one place gRPC statuses become SDK statuses.
Status FromGrpc(const grpc::Status& status);

}  // namespace dogpiled::internal
