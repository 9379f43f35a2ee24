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

// The answer to an Unlock or Abandon as the caller sees it: OK also when
// the daemon refused it NOT_HOLDER with metadata "released" = "true",
// because this session's own earlier call (whose answer was lost, then
// retried) already released that token, so the release the caller asked
// for happened. Any other NOT_HOLDER keeps its meaning: the grant was lost.
Status ReleaseAnswer(Status status);

}  // namespace dogpiled::internal
