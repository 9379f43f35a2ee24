#include "service/status_map.h"

#include <cstdint>
#include <string>

#include "core/errors.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace dogpiled::service {

grpc::Status ToGrpc(const core::Status& status) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  // core::Code uses gRPC's canonical numbers.
  const auto code = static_cast<grpc::StatusCode>(status.code());
  google::rpc::ErrorInfo info;
  info.set_domain(std::string(kErrorDomain));
  // An error site that forgot its reason still gets an ErrorInfo, with the
  // enum's zero name, so clients can always read one.
  info.set_reason(status.reason().empty() ? "ERROR_REASON_UNSPECIFIED"
                                          : status.reason());
  int64_t retry_delay_ms = -1;
  for (const auto& [key, value] : status.metadata()) {
    if (key == core::kRetryDelayMs) {
      retry_delay_ms = std::stoll(value);
    } else {
      (*info.mutable_metadata())[key] = value;
    }
  }
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(status.message());
  details.add_details()->PackFrom(info);
  if (retry_delay_ms >= 0) {
    google::rpc::RetryInfo retry;
    retry.mutable_retry_delay()->set_seconds(retry_delay_ms / 1000);
    retry.mutable_retry_delay()->set_nanos(
        static_cast<int32_t>(retry_delay_ms % 1000) * 1000000);
    details.add_details()->PackFrom(retry);
  }
  // gRPC sends these bytes as the grpc-status-details-bin trailer.
  return {code, status.message(), details.SerializeAsString()};
}

}  // namespace dogpiled::service
