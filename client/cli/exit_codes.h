// dogpilectl's exit codes: the one table, printed by --help and copied to
// the README. Scripts branch on these, so they never change meaning.
#pragma once

namespace dogpilectl {

enum ExitCode : int {
  kExitOk = 0,
  // A negative answer, not a failure: peek/get found no value, health is
  // not SERVING, lock was not granted (-n, or --wait ran out; like flock).
  kExitNo = 1,
  kExitUsage = 2,             // bad flags or arguments
  kExitUnavailable = 3,       // daemon unreachable, shutting down, or slow
  kExitRefused = 4,           // the daemon refused the request
  kExitWaitTimeout = 5,       // get: another creator did not finish in --wait
  kExitCreateFailed = 6,      // get --create: CMD failed; the role was handed on
  kExitSessionLost = 7,       // lock: session lost while CMD ran; CMD got SIGTERM
  kExitCannotRun = 126,       // lock: CMD found but not runnable (as sh)
  kExitNotFound = 127,        // lock: CMD not found (as sh)
};

inline constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0    success (lock: CMD's own exit status is returned instead)\n"
    "  1    negative answer: no value (peek, get without --create), health\n"
    "       not SERVING, lock not granted (-n or --wait ran out)\n"
    "  2    usage error\n"
    "  3    daemon unreachable, shutting down, or too slow (--timeout)\n"
    "  4    the daemon refused the request (bad name, limit reached, ...)\n"
    "  5    get: waited --wait for another creator, in vain\n"
    "  6    get --create: CMD failed; the creator role was handed on\n"
    "  7    lock: the session was lost while CMD ran; CMD got SIGTERM\n"
    "  126  lock: CMD is not executable;  127: CMD not found\n"
    "  128+N  lock: CMD was killed by signal N\n";

}  // namespace dogpilectl
