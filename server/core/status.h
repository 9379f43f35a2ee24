// Errors as values, with canonical codes. The core never throws for bad
// input; it returns a Status whose message names the field or the key. The
// service layer maps these codes to grpc::Status in exactly one place.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dogpiled::core {

// Same numbers as grpc::StatusCode, so the mapping is a cast.
enum class Code {
  kOk = 0,
  kCancelled = 1,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message)
      : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // A stable, machine-readable cause (google.rpc.ErrorInfo's reason, such
  // as "VALUE_TOO_LARGE") with metadata naming the field and the limit, so
  // programs act on errors without parsing the message.
  using Metadata = std::vector<std::pair<std::string, std::string>>;
  Status WithReason(std::string reason, Metadata metadata = {}) && {
    reason_ = std::move(reason);
    metadata_ = std::move(metadata);
    return std::move(*this);
  }
  const std::string& reason() const { return reason_; }
  const Metadata& metadata() const { return metadata_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::string reason_;
  Metadata metadata_;
};

inline Status InvalidArgument(std::string m) {
  return {Code::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status ResourceExhausted(std::string m) {
  return {Code::kResourceExhausted, std::move(m)};
}
inline Status Unavailable(std::string m) {
  return {Code::kUnavailable, std::move(m)};
}

// A value or the Status that explains why there is none.
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  const T& value() const { return *value_; }
  T& value() { return *value_; }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace dogpiled::core
