// The daemon's configuration, from three sources with one order of
// precedence: command-line flags, then DOGPILED_* environment variables,
// then the TOML file named by --config (or DOGPILED_CONFIG), then the
// built-in defaults.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/limits.h"

namespace CLI {
class App;
}

namespace dogpiled::daemon {

// Metrics are optional: at this default a busy port only turns them off
// (with a warning), so a second daemon on a host still serves; an address
// asked for explicitly must be served or the daemon stops.
inline constexpr char kDefaultMetricsListen[] = "127.0.0.1:9420";

struct Config {
  std::string config_file;
  std::string listen = "127.0.0.1:7420";
  std::string state_dir = "/var/lib/dogpiled";
  std::string port_file;
  std::string metrics_listen = kDefaultMetricsListen;
  std::string metrics_port_file;
  std::string log_level = "info";
  std::string log_format = "text";
  int64_t shutdown_grace_ms = 2000;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string registry_token_file;
  std::string admin_token_file;
  // Transport limits (server.cc): what one connection, and all together,
  // may make the daemon hold.
  int64_t max_streams_per_connection = 20'000;
  uint64_t max_answer_bytes_per_connection = 16ULL << 20;
  uint64_t max_answer_bytes = 256ULL << 20;
  uint64_t grpc_memory_bytes = 1ULL << 30;
  int64_t grpc_max_threads = 64;
  int64_t keepalive_time_ms = 30'000;
  int64_t keepalive_timeout_ms = 10'000;
  int64_t max_connection_idle_ms = 0;
  std::string fsync = "everysec";
  uint64_t compact_bytes = 64ULL << 20;
  // Replicated mode: empty peers is a single node.
  uint64_t node_id = 0;
  std::string peers;
  std::string advertise;
  bool join = false;
  int64_t election_timeout_ms = 500;
  int64_t heartbeat_ms = 50;
  core::Limits limits;
};

// Registers every flag (with its environment variable) on `app`, bound to
// `config`. Defaults are the values already in `config`.
void AddFlags(CLI::App& app, Config& config);

// The arguments to parse, in CLI11's reverse order: argv with every
// DOGPILED_* variable that is set turned into a flag placed before the real
// ones. Every option keeps its last value, so flags beat the environment,
// and CLI11 only takes from the file what neither set. (Left to itself,
// CLI11 2.1 reads the file before the environment, so the file would win.)
std::vector<std::string> ArgsWithEnvironment(const CLI::App& app, int argc,
                                             const char* const* argv);

// One line with every setting in force after `app` parsed (name=value,
// names with underscores), for the start-up log.
std::string Describe(const CLI::App& app);

}  // namespace dogpiled::daemon
