// The daemon's configuration: flags, DOGPILED_* environment variables and an
// optional TOML config file (--config), in that order of precedence.
#pragma once

#include <cstdint>
#include <string>

#include "core/limits.h"

namespace CLI {
class App;
}

namespace dogpiled::daemon {

struct Config {
  std::string listen = "127.0.0.1:7420";
  std::string state_dir = "/var/lib/dogpiled";
  std::string port_file;
  std::string log_level = "info";
  int64_t shutdown_grace_ms = 2000;
  core::Limits limits;
};

// Registers every flag (with its environment variable) on `app`, bound to
// `config`. Defaults are the values already in `config`.
void AddFlags(CLI::App& app, Config& config);

// One line per setting, for the start-up log.
std::string Describe(const Config& config);

}  // namespace dogpiled::daemon
