#include "service/status_map.h"

namespace dogpiled::service {

grpc::Status ToGrpc(const core::Status& status) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  // core::Code uses gRPC's canonical numbers.
  return {static_cast<grpc::StatusCode>(status.code()), status.message()};
}

}  // namespace dogpiled::service
