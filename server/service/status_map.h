// The one place where core errors become gRPC statuses.
#pragma once

#include <grpcpp/support/status.h>

#include "core/status.h"

namespace dogpiled::service {

grpc::Status ToGrpc(const core::Status& status);

}  // namespace dogpiled::service
