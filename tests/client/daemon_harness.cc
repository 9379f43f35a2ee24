#include "daemon_harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace dogpiled::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool ReadPort(const std::string& path, int* port) {
  std::ifstream in(path);
  int p = 0;
  if (in >> p && p > 0) {
    *port = p;
    return true;
  }
  return false;
}

}  // namespace

std::string BinaryFromEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    throw std::runtime_error(std::string(name) +
                             " is not set: run the tests through ctest");
  }
  return value;
}

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "dogpiled-test-XXXXXX")
          .string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

bool WaitForFile(const std::string& path, int timeout_ms) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  bool found = false;
  while (!(found = std::filesystem::exists(path)) && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    char drain[4096];
    while (read(fd, drain, sizeof(drain)) > 0) {
    }
  }
  close(fd);
  return found;
}

std::unique_ptr<Daemon> Daemon::Start(std::vector<std::string> extra_args,
                                      const std::string& listen) {
  std::unique_ptr<Daemon> d(new Daemon());
  std::string pattern =
      (std::filesystem::temp_directory_path() / "dogpiled-daemon-XXXXXX")
          .string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  d->dir_ = pattern;
  d->port_file_ = d->dir_ + "/port";
  std::vector<std::string> args = {
      BinaryFromEnv("DOGPILED_BIN"), "--listen", listen, "--port-file",
      d->port_file_, "--state-dir", d->dir_, "--log-level", "warn",
      // Several daemons run at once here: no fixed metrics port.
      "--metrics-listen", ""};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  d->pid_ = fork();
  if (d->pid_ < 0) {
    throw std::runtime_error("fork failed");
  }
  if (d->pid_ == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  d->WaitForPortFile();
  return d;
}

void Daemon::WaitForPortFile() {
  const int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  inotify_add_watch(fd, dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO);
  // Start-up takes milliseconds; the bound is for a daemon that never comes
  // up, and is wide so a loaded machine (or a sanitizer build) only waits.
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!ReadPort(port_file_, &port_)) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      close(fd);
      throw std::runtime_error("dogpiled exited before serving");
    }
    if (Clock::now() > deadline) {
      close(fd);
      throw std::runtime_error("dogpiled did not write its port file");
    }
    // Woken by the file's close, or after 100 ms to check the process.
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, 100);
    char drain[4096];
    while (read(fd, drain, sizeof(drain)) > 0) {
    }
  }
  close(fd);
}

void Daemon::Signal(int signal) {
  if (pid_ <= 0) {
    return;
  }
  kill(pid_, signal);
  if (signal == SIGSTOP) {
    // kill() returns before the stop takes effect: a call sent at once could
    // still be answered by a thread running on the other core. The daemon is
    // our child, so waitpid reports the moment it is stopped.
    int status = 0;
    waitpid(pid_, &status, WUNTRACED);
  }
  if (signal == SIGKILL || signal == SIGTERM) {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    kill(pid_, SIGCONT);  // in case a test stopped it
  }
  Signal(SIGTERM);
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

}  // namespace dogpiled::testing
