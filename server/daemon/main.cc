// dogpiled: the lock-and-cache coordination daemon.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "daemon/config.h"
#include "daemon/server.h"

int main(int argc, char** argv) {
  dogpiled::daemon::Config config;
  CLI::App app{
      "dogpiled: one caller regenerates, everyone else serves the previous "
      "value. Every flag can also be set by the DOGPILED_* environment "
      "variable shown, or in the --config file; flags win over the "
      "environment, which wins over the file."};
  dogpiled::daemon::AddFlags(app, config);
  CLI11_PARSE(app, argc, argv);

  const auto level = spdlog::level::from_str(config.log_level);
  if (level == spdlog::level::off && config.log_level != "off") {
    std::fprintf(stderr, "--log-level: unknown level '%s'\n",
                 config.log_level.c_str());
    return 2;
  }
  spdlog::set_level(level);
  spdlog::info("dogpiled starting: {}", dogpiled::daemon::Describe(config));
  return dogpiled::daemon::RunDaemon(config);
}
