// Runs dogpilectl ($DOGPILECTL_BIN) the way a user would: a separate
// process with DOGPILED_TARGET in its environment.
//
// Thread-compatible.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace dogpiled::testing {

struct CliResult {
  int exit_code = -1;  // shell-style: 128+N when killed by signal N
  std::string out;
  std::string err;
};

// Runs to completion, capturing stdout and stderr.
CliResult RunCli(const std::string& target,
                 const std::vector<std::string>& args);

// Runs in the background; Wait() collects it.
class BackgroundCli {
 public:
  BackgroundCli(const std::string& target,
                const std::vector<std::string>& args);
  ~BackgroundCli();
  BackgroundCli(const BackgroundCli&) = delete;
  BackgroundCli& operator=(const BackgroundCli&) = delete;

  CliResult Wait();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
};

}  // namespace dogpiled::testing
