#include "cli/child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "cli/exit_codes.h"

namespace dogpilectl {
namespace {

// The command being waited for, for the signal handler (which must not
// lock). Cleared before the command is reaped.
std::atomic<pid_t> g_forward_pid{0};

void ForwardSignal(int signal) {
  const pid_t pid = g_forward_pid.load();
  if (pid > 0) {
    kill(pid, signal);
  }
}

// Restores what a command expects to inherit: default dispositions for the
// signals dogpilectl ignores while it waits.
void ResetSignalsInChild() {
  signal(SIGINT, SIG_DFL);
  signal(SIGQUIT, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
}

pid_t WaitRetrying(pid_t pid, int* status, int options) {
  pid_t r;
  do {
    r = waitpid(pid, status, options);
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

int ShellExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return WEXITSTATUS(wait_status);
  }
  if (WIFSIGNALED(wait_status)) {
    return 128 + WTERMSIG(wait_status);
  }
  return 1;
}

Captured RunShellCapture(const std::string& command) {
  Captured result;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    result.exit_code = 127;
    return result;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    result.exit_code = 127;
    return result;
  }
  if (pid == 0) {
    ResetSignalsInChild();
    dup2(out[1], STDOUT_FILENO);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(out[0], buffer, sizeof(buffer));
    if (n > 0) {
      result.out.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(out[0]);
  int status = 0;
  WaitRetrying(pid, &status, 0);
  result.exit_code = ShellExitCode(status);
  return result;
}

Child::Child(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  // The child reports a failed exec through this pipe; success closes it.
  int report[2];
  if (argv.empty() || pipe2(report, O_CLOEXEC) != 0) {
    exit_code_ = kExitCannotRun;
    start_error_ = "no command to run";
    return;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    ResetSignalsInChild();
    execvp(args[0], args.data());
    const int error = errno;
    (void)!write(report[1], &error, sizeof(error));
    _exit(error == ENOENT ? kExitNotFound : kExitCannotRun);
  }
  close(report[1]);
  if (pid < 0) {
    close(report[0]);
    exit_code_ = kExitCannotRun;
    start_error_ = std::string("fork: ") + std::strerror(errno);
    return;
  }
  int error = 0;
  ssize_t n;
  do {
    n = read(report[0], &error, sizeof(error));
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == sizeof(error)) {
    int status = 0;
    WaitRetrying(pid, &status, 0);
    exit_code_ = error == ENOENT ? kExitNotFound : kExitCannotRun;
    start_error_ = argv[0] + ": " + std::strerror(error);
    return;
  }
  pid_ = pid;
}

int Child::Wait() {
  pid_t pid;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pid_ < 0) {
      return exit_code_;
    }
    pid = pid_;
  }
  // Wait without reaping, so no signal can hit a reused pid.
  g_forward_pid.store(pid);
  siginfo_t info;
  int r;
  do {
    r = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
  } while (r < 0 && errno == EINTR);
  g_forward_pid.store(0);
  std::lock_guard<std::mutex> lock(mu_);
  int status = 0;
  WaitRetrying(pid, &status, 0);
  pid_ = -1;
  exit_code_ = ShellExitCode(status);
  return exit_code_;
}

void Child::Terminate() {
  std::lock_guard<std::mutex> lock(mu_);
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
  }
}

void ForwardSignalsToCommand() {
  // Like system(3): the terminal's SIGINT/SIGQUIT reach the command through
  // its process group; dogpilectl waits for it and then releases the lock.
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  struct sigaction forward = {};
  forward.sa_handler = ForwardSignal;
  sigemptyset(&forward.sa_mask);
  forward.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &forward, nullptr);
  sigaction(SIGHUP, &forward, nullptr);
}

}  // namespace dogpilectl
