// Test harness: the real dogpiled binary on loopback, one per test.
//
// Start() forks and execs $DOGPILED_BIN on 127.0.0.1:0 (or a given
// address) with --port-file and a fresh --state-dir, and returns once the
// port file is written (waited for with inotify, not sleeps). The
// destructor stops it with SIGTERM and reaps it.
//
// Thread-compatible: one test thread drives it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace dogpiled::testing {

class Daemon {
 public:
  // Throws std::runtime_error if the daemon does not come up in 60 s.
  static std::unique_ptr<Daemon> Start(std::vector<std::string> extra_args = {},
                                       const std::string& listen =
                                           "127.0.0.1:0");
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }

  // Sends `signal`; for SIGKILL/SIGTERM also waits for the process to end,
  // for SIGSTOP until it is stopped.
  void Signal(int signal);

 private:
  Daemon() = default;
  void WaitForPortFile();

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
  std::string port_file_;
};

// A scratch directory removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Path of a binary the build passed through the environment (e.g.
// DOGPILED_BIN); throws if unset.
std::string BinaryFromEnv(const char* name);

// Waits up to `timeout_ms` for `path` to exist, with inotify.
bool WaitForFile(const std::string& path, int timeout_ms);

}  // namespace dogpiled::testing
