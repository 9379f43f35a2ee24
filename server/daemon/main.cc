// dogpiled: the lock-and-cache coordination daemon.
#include <absl/synchronization/mutex.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "daemon/config.h"
#include "daemon/logging.h"
#include "daemon/server.h"

int main(int argc, char** argv) {
  // Debian builds abseil with mutex deadlock detection on; inside gRPC it
  // costs 2-3% of the daemon's CPU (bench/, callgrind) and guards nothing
  // of ours: our own locks are checked by -Wthread-safety and TSan.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  dogpiled::daemon::Config config;
  CLI::App app{
      "dogpiled: one caller regenerates, everyone else serves the previous "
      "value. Every flag can also be set by the DOGPILED_* environment "
      "variable shown, or in the --config file; flags win over the "
      "environment, which wins over the file."};
  dogpiled::daemon::AddFlags(app, config);
  std::vector<std::string> args =
      dogpiled::daemon::ArgsWithEnvironment(app, argc, argv);
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (const CLI::Option* file = app.get_config_ptr(); file->count() > 0) {
    config.config_file = file->as<std::string>();
  }

  const dogpiled::core::Status logging =
      dogpiled::daemon::SetUpLogging(config.log_level, config.log_format);
  if (!logging.ok()) {
    std::fprintf(stderr, "%s\n", logging.message().c_str());
    return 2;
  }
  spdlog::info("dogpiled starting: {}", dogpiled::daemon::Describe(app));
  const int rc = dogpiled::daemon::RunDaemon(config);
  spdlog::shutdown();  // drains the asynchronous log
  return rc;
}
