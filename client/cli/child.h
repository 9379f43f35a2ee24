// Child processes for dogpilectl: the creator command of `get --create`
// and the command `lock` runs under the lock.
//
// Thread-compatible: one caller per object; Terminate() may be called
// from any thread while Wait() runs.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <vector>

namespace dogpilectl {

struct Captured {
  int exit_code = 0;  // shell-style: 128+N when killed by signal N
  std::string out;    // everything it wrote to stdout
};

// Runs `/bin/sh -c command` with stdin and stderr inherited, capturing
// stdout. exit_code 127 if the shell itself could not run.
Captured RunShellCapture(const std::string& command);

// A command run with argv (PATH lookup), inheriting stdio.
class Child {
 public:
  // Starts argv; on failure exit_code() is 126 or 127 and Wait() returns
  // it at once.
  explicit Child(const std::vector<std::string>& argv);
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Why the command could not be started ("" if it was).
  const std::string& start_error() const { return start_error_; }
  // Waits for the command to end; returns its shell-style exit code.
  int Wait();
  // Sends SIGTERM unless the command has already been waited for. Safe
  // against pid reuse: the pid is only reaped under the same lock.
  void Terminate();

 private:
  std::mutex mu_;
  pid_t pid_ = -1;      // guarded by mu_; -1 once reaped or never started
  int exit_code_ = 0;   // set when pid_ becomes -1
  std::string start_error_;  // constant after construction
};

// Shell-style exit code from a waitpid status.
int ShellExitCode(int wait_status);

// From now on, SIGTERM and SIGHUP sent to dogpilectl are passed on to the
// command a Child is waiting for, and SIGINT/SIGQUIT are ignored (the
// terminal sends them to the command directly), so dogpilectl outlives the
// command and releases the lock cleanly.
void ForwardSignalsToCommand();

}  // namespace dogpilectl
