// Errors as values, with the canonical gRPC/abseil codes, so callers can
// branch on them without seeing a gRPC type. Calls that return a value and
// are named after the dogpile library (Dogpile::acquire, ...) throw Error
// instead, because their Python namesakes raise.
//
// Thread-safety: Status, StatusOr and Error are plain values; distinct
// objects may be used from distinct threads freely.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "dogpiled/export.h"

namespace dogpiled {

// Same numbers as grpc::StatusCode and absl::StatusCode.
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "UNAVAILABLE", "NOT_FOUND", ... as gRPC spells them.
DOGPILED_EXPORT const char* StatusCodeName(StatusCode code);

class DOGPILED_EXPORT Status {
 public:
  using Metadata = std::map<std::string, std::string>;

  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}
  // With the daemon's google.rpc.ErrorInfo reason and metadata.
  Status(StatusCode code, std::string message, std::string reason,
         Metadata metadata)
      : code_(code),
        message_(std::move(message)),
        reason_(std::move(reason)),
        metadata_(std::move(metadata)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The stable cause, one of dogpiled.v1.ErrorReason's names
  // ("VALUE_TOO_LARGE", "SESSION_NOT_FOUND", "NOT_HOLDER", ...; see
  // proto/dogpiled/v1/errors.proto). Empty when the error did not come
  // from the daemon (transport failures, the SDK's own checks).
  const std::string& reason() const { return reason_; }
  // ErrorInfo metadata: "field" (the request field at fault), "limit"
  // (the bound hit), and more per reason.
  const Metadata& metadata() const { return metadata_; }
  // The daemon's google.rpc.RetryInfo, if it sent one (caps): wait about
  // this long before trying again.
  std::optional<std::chrono::milliseconds> retry_delay() const {
    return retry_delay_;
  }
  void set_retry_delay(std::chrono::milliseconds delay) {
    retry_delay_ = delay;
  }
  // "NOT_FOUND: session_id: unknown or ended session 42", or "OK".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string reason_;
  Metadata metadata_;
  std::optional<std::chrono::milliseconds> retry_delay_;
};

// Thrown by the dogpile-style calls when the daemon refuses or cannot be
// reached. what() is status().ToString().
class DOGPILED_EXPORT Error : public std::runtime_error {
 public:
  explicit Error(Status status);
  ~Error() override;
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// A value or the Status that explains its absence. value() throws Error
// when there is none (like absl::StatusOr); operator* and -> do not check.
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit
    if (status_.ok()) {
      status_ = Status(StatusCode::kInternal, "StatusOr built from OK");
    }
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    Check();
    return *value_;
  }
  const T& value() const& {
    Check();
    return *value_;
  }
  T&& value() && {
    Check();
    return std::move(*value_);
  }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  void Check() const {
    if (!value_) {
      throw Error(status_);
    }
  }

  Status status_;
  std::optional<T> value_;
};

}  // namespace dogpiled
