// The one place where core errors become gRPC statuses: the code, the
// message, and a google.rpc.Status in the grpc-status-details-bin trailer
// carrying google.rpc.ErrorInfo (reason and metadata; see
// proto/dogpiled/v1/errors.proto) and, for caps, google.rpc.RetryInfo.
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

#include "core/status.h"

namespace dogpiled::service {

// google.rpc.ErrorInfo.domain of every dogpiled error.
inline constexpr std::string_view kErrorDomain = "dogpiled";

grpc::Status ToGrpc(const core::Status& status);

}  // namespace dogpiled::service
