// Answers a request that does not parse as its method's message with
// INVALID_ARGUMENT naming it, instead of gRPC's bare UNIMPLEMENTED.
//
// gRPC (1.51) gives such a call no handler: it finishes it UNIMPLEMENTED
// with an empty message, as if the method did not exist. The interceptor
// sees the missing message after the receive and rewrites that status on
// its way out. Thread-safe: one interceptor per call.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>

namespace dogpiled::service {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeParseErrorInterceptorFactory();

}  // namespace dogpiled::service
