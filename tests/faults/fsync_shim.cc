// LD_PRELOAD shim that makes the disk under a real dogpiled slow or failing,
// deterministically, for the integration tests (the unit tests use the Env
// seam instead). It wraps fsync and fdatasync:
//   DOGPILED_FAULT_FSYNC_GATE=PATH  a sync waits while PATH exists
//   DOGPILED_FAULT_FSYNC_FAIL=PATH  a sync fails with EIO while PATH exists
//   DOGPILED_FAULT_FSYNC_DELAY_MS=N every sync first sleeps N ms
// Files, not signals, so a test flips them at the exact moment it wants.
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>

namespace {

bool Exists(const char* env_name) {
  const char* path = std::getenv(env_name);
  struct stat st;
  return path != nullptr && ::stat(path, &st) == 0;
}

void Nap(long ms) {
  timespec t{ms / 1000, (ms % 1000) * 1'000'000L};
  while (::nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

// Returns -1 (errno EIO) to fail the sync, 0 to let it through.
int Fault() {
  if (const char* delay = std::getenv("DOGPILED_FAULT_FSYNC_DELAY_MS")) {
    Nap(std::atol(delay));
  }
  while (Exists("DOGPILED_FAULT_FSYNC_GATE")) {
    Nap(5);
  }
  if (Exists("DOGPILED_FAULT_FSYNC_FAIL")) {
    errno = EIO;
    return -1;
  }
  return 0;
}

}  // namespace

extern "C" int fsync(int fd) {
  using Fn = int (*)(int);
  static Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "fsync"));
  return Fault() != 0 ? -1 : real(fd);
}

extern "C" int fdatasync(int fd) {
  using Fn = int (*)(int);
  static Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "fdatasync"));
  return Fault() != 0 ? -1 : real(fd);
}
