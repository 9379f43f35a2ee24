// gRPC plumbing shared by the scenarios: connections and deadlines.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace dogpiled::bench {

// `n` channels to `target`, each its own TCP connection (a channel argument
// that differs per channel keeps gRPC from sharing one subchannel), all
// connected before this returns. Exits the process if one cannot connect.
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(
    const std::string& target, int n);

inline void SetDeadlineMs(grpc::ClientContext& context, int64_t ms) {
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(ms));
}

inline std::string Describe(const grpc::Status& status) {
  return std::to_string(static_cast<int>(status.error_code())) + ": " +
         status.error_message();
}

// Setup failures end the run: the harness reports a missing scenario
// rather than a wrong number.
[[noreturn]] void Die(const std::string& message);

}  // namespace dogpiled::bench
