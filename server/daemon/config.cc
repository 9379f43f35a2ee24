#include "daemon/config.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace dogpiled::daemon {
namespace {

template <typename T>
CLI::Option* Flag(CLI::App& app, const std::string& name, T& value,
                  const std::string& help, const std::string& env) {
  return app.add_option(name, value, help)
      ->envname(env)
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

}  // namespace

void AddFlags(CLI::App& app, Config& c) {
  core::Limits& l = c.limits;
  app.set_config("--config", "",
                 "TOML config file: keys are the long flag names without "
                 "the leading dashes, e.g. state-dir = \"/var/lib/dogpiled\" "
                 "(example: deploy/dogpiled.toml); unknown keys are errors")
      ->envname("DOGPILED_CONFIG")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // A misspelt key in a file must not be silently ignored.
  app.allow_config_extras(CLI::config_extras_mode::error);
  Flag(app, "--listen", c.listen,
       "gRPC address to serve on, HOST:PORT (port 0 picks a free port)",
       "DOGPILED_LISTEN");
  Flag(app, "--state-dir", c.state_dir,
       "Folder for durable state (the fencing-token high-water mark), so "
       "tokens never repeat across restarts", "DOGPILED_STATE_DIR");
  Flag(app, "--port-file", c.port_file,
       "Write the bound port to this file once serving (for tests and "
       "scripts)", "DOGPILED_PORT_FILE");
  Flag(app, "--metrics-listen", c.metrics_listen,
       "Prometheus metrics over HTTP (GET /metrics), HOST:PORT; port 0 "
       "picks a free port; empty turns metrics off",
       "DOGPILED_METRICS_LISTEN");
  Flag(app, "--metrics-port-file", c.metrics_port_file,
       "Write the bound metrics port to this file once serving",
       "DOGPILED_METRICS_PORT_FILE");
  Flag(app, "--log-level", c.log_level,
       "trace, debug, info, warn, error, critical or off",
       "DOGPILED_LOG_LEVEL");
  Flag(app, "--log-format", c.log_format,
       "text (for people) or json (one object per line, for log shippers)",
       "DOGPILED_LOG_FORMAT");
  Flag(app, "--shutdown-grace-ms", c.shutdown_grace_ms,
       "On SIGINT/SIGTERM, how long open streams may take to finish",
       "DOGPILED_SHUTDOWN_GRACE_MS");
  Flag(app, "--tls-cert", c.tls_cert,
       "PEM certificate chain: serve gRPC over TLS (with --tls-key)",
       "DOGPILED_TLS_CERT");
  Flag(app, "--tls-key", c.tls_key, "PEM private key for --tls-cert",
       "DOGPILED_TLS_KEY");
  Flag(app, "--tls-client-ca", c.tls_client_ca,
       "PEM CA bundle: require client certificates signed by it (mutual "
       "TLS); each session is then bound to the identity that opened it",
       "DOGPILED_TLS_CLIENT_CA");
  Flag(app, "--registry-token-file", c.registry_token_file,
       "File of registry=token lines: those registries require the "
       "metadata 'authorization: Bearer <token>'",
       "DOGPILED_REGISTRY_TOKEN_FILE");
  Flag(app, "--admin-token-file", c.admin_token_file,
       "File holding one token: callers presenting it as 'authorization: "
       "Bearer <token>' may read Admin.Stats. On a daemon that protects "
       "registries (or has this file), nobody else may",
       "DOGPILED_ADMIN_TOKEN_FILE");
  Flag(app, "--max-streams-per-connection", c.max_streams_per_connection,
       "HTTP/2 streams (calls, parked ones included) one connection may "
       "have open at once", "DOGPILED_MAX_STREAMS_PER_CONNECTION")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  Flag(app, "--max-answer-bytes-per-connection",
       c.max_answer_bytes_per_connection,
       "Bytes of values in answers one connection may leave unread; past "
       "it, new calls that would return a value get RESOURCE_EXHAUSTED and "
       "answers to parked calls wait their turn (one answer is always "
       "allowed; 0: no limit)",
       "DOGPILED_MAX_ANSWER_BYTES_PER_CONNECTION");
  Flag(app, "--max-answer-bytes", c.max_answer_bytes,
       "Bytes of values in unread answers over all connections (0: no "
       "limit)", "DOGPILED_MAX_ANSWER_BYTES");
  Flag(app, "--grpc-memory-bytes", c.grpc_memory_bytes,
       "gRPC's resource quota: memory its transport may use for buffers",
       "DOGPILED_GRPC_MEMORY_BYTES");
  Flag(app, "--grpc-max-threads", c.grpc_max_threads,
       "gRPC's resource quota: threads it may start",
       "DOGPILED_GRPC_MAX_THREADS")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  Flag(app, "--keepalive-time-ms", c.keepalive_time_ms,
       "Ping each connection after this long without reads; with "
       "--keepalive-timeout-ms, a client that stops reading is cut off",
       "DOGPILED_KEEPALIVE_TIME_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{1} << 40));
  Flag(app, "--keepalive-timeout-ms", c.keepalive_timeout_ms,
       "Close a connection whose ping is not answered within this",
       "DOGPILED_KEEPALIVE_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{1} << 40));
  Flag(app, "--max-connection-idle-ms", c.max_connection_idle_ms,
       "Close a connection with no call for this long (0: never)",
       "DOGPILED_MAX_CONNECTION_IDLE_MS");
  Flag(app, "--fsync", c.fsync,
       "When stored values reach the disk under --state-dir: always (before "
       "each answer), everysec (a crash loses about a second), or no (the "
       "kernel decides)", "DOGPILED_FSYNC")
      ->check(CLI::IsMember({"always", "everysec", "no"}));
  Flag(app, "--compact-bytes", c.compact_bytes,
       "Rewrite the value snapshot once the change log grows past this "
       "(and past twice the snapshot)", "DOGPILED_COMPACT_BYTES");
  // Replicated mode (docs/replication.md). With no --peers the daemon is a
  // single node, exactly as without these flags.
  Flag(app, "--node-id", c.node_id,
       "This member's id in a replicated group: its entry in --peers",
       "DOGPILED_NODE_ID");
  Flag(app, "--peers", c.peers,
       "Every member of a replicated group, this one included: "
       "ID=HOST:PORT,... with the address the members reach each other's "
       "Raft on (empty: a single node)", "DOGPILED_PEERS");
  app.add_flag("--join", c.join,
               "Replicated mode: this member joins a running group "
               "(Admin.AddMember adds it): with an empty state dir it waits "
               "for the group's leader instead of starting a new group from "
               "--peers")
      ->envname("DOGPILED_JOIN")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  Flag(app, "--advertise", c.advertise,
       "HOST:PORT clients reach this member on, named to them by followers "
       "when it leads (default: --listen with its bound port; set it when "
       "--listen's host is 0.0.0.0 or clients see another address)",
       "DOGPILED_ADVERTISE");
  Flag(app, "--election-timeout-ms", c.election_timeout_ms,
       "Replicated mode: how long followers wait without a heartbeat before "
       "electing a new leader", "DOGPILED_ELECTION_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{50}, int64_t{600'000}));
  Flag(app, "--heartbeat-ms", c.heartbeat_ms,
       "Replicated mode: how often the leader sends heartbeats (well below "
       "--election-timeout-ms)", "DOGPILED_HEARTBEAT_MS")
      ->check(CLI::Range(int64_t{10}, int64_t{60'000}));
  Flag(app, "--default-ttl-ms", l.default_ttl_ms,
       "Session TTL when Open asks for 0", "DOGPILED_DEFAULT_TTL_MS");
  Flag(app, "--min-ttl-ms", l.min_ttl_ms, "Smallest session TTL accepted",
       "DOGPILED_MIN_TTL_MS");
  Flag(app, "--max-ttl-ms", l.max_ttl_ms, "Largest session TTL accepted",
       "DOGPILED_MAX_TTL_MS");
  Flag(app, "--default-creation-timeout-ms", l.default_creation_timeout_ms,
       "Creator role length when Acquire asks for 0",
       "DOGPILED_DEFAULT_CREATION_TIMEOUT_MS");
  Flag(app, "--max-timeout-ms", l.max_timeout_ms,
       "Largest wait_timeout_ms or creation_timeout_ms accepted",
       "DOGPILED_MAX_TIMEOUT_MS");
  Flag(app, "--invalidation-horizon-ms", l.invalidation_horizon_ms,
       "How long an invalidation is remembered for a key nothing else "
       "references", "DOGPILED_INVALIDATION_HORIZON_MS");
  Flag(app, "--max-key-bytes", l.max_key_bytes, "Longest key accepted",
       "DOGPILED_MAX_KEY_BYTES");
  Flag(app, "--max-value-bytes", l.max_value_bytes, "Largest value accepted",
       "DOGPILED_MAX_VALUE_BYTES");
  Flag(app, "--memory-budget-bytes", l.memory_budget_bytes,
       "Bytes for everything kept per entry (keys, values, 704 bytes of "
       "bookkeeping each, remembered invalidations); past it least recently "
       "used values nobody holds or waits on are evicted",
       "DOGPILED_MEMORY_BUDGET_BYTES");
  Flag(app, "--invalidation-memory-bytes", l.invalidation_memory_bytes,
       "Share of the budget for remembered invalidations of single keys; "
       "past it the oldest fold into a registry-wide mark (0: an eighth of "
       "the budget)", "DOGPILED_INVALIDATION_MEMORY_BYTES");
  Flag(app, "--max-sessions", l.max_sessions, "Cap on open sessions",
       "DOGPILED_MAX_SESSIONS");
  Flag(app, "--max-waiters", l.max_waiters, "Cap on parked calls in all",
       "DOGPILED_MAX_WAITERS");
  Flag(app, "--max-sessions-per-client", l.max_sessions_per_client,
       "Cap on open sessions of one client (TLS identity, else address)",
       "DOGPILED_MAX_SESSIONS_PER_CLIENT");
  Flag(app, "--max-waiters-per-key", l.max_waiters_per_key,
       "Cap on parked calls in one key's line",
       "DOGPILED_MAX_WAITERS_PER_KEY");
  Flag(app, "--max-sessions-per-tenant", l.max_sessions_per_tenant,
       "Quota of open sessions of one tenant (a certificate identity, a "
       "registry token, or all anonymous clients together)",
       "DOGPILED_MAX_SESSIONS_PER_TENANT");
  Flag(app, "--max-waiters-per-tenant", l.max_waiters_per_tenant,
       "Quota of parked calls of one tenant",
       "DOGPILED_MAX_WAITERS_PER_TENANT");
  Flag(app, "--max-grants-per-tenant", l.max_grants_per_tenant,
       "Quota of held locks and creator roles of one tenant",
       "DOGPILED_MAX_GRANTS_PER_TENANT");
  Flag(app, "--max-grants-per-session", l.max_grants_per_session,
       "Cap on locks and creator roles one session holds at once",
       "DOGPILED_MAX_GRANTS_PER_SESSION");
  Flag(app, "--tenant-memory-bytes", l.tenant_memory_bytes,
       "Bytes of stored values one tenant may keep (0: the whole memory "
       "budget); a tenant never evicts another below its fair share",
       "DOGPILED_TENANT_MEMORY_BYTES");
  Flag(app, "--max-future-skew-ms", l.max_future_skew_ms,
       "How far ahead of the daemon's clock created_time and "
       "client_created_time may be", "DOGPILED_MAX_FUTURE_SKEW_MS")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  Flag(app, "--max-tracked-keys", l.max_tracked_keys,
       "Near-cache: (session, key) pairs the daemon tracks for watches; "
       "past it, near_cache reads are answered but not registered, so "
       "clients do not keep them (docs/near-cache.md)",
       "DOGPILED_MAX_TRACKED_KEYS");
  Flag(app, "--watch-heartbeat-ms", l.watch_heartbeat_ms,
       "Near-cache: a Watch stream that sent nothing for this long gets a "
       "heartbeat; clients drop their cache after a few missed ones",
       "DOGPILED_WATCH_HEARTBEAT_MS")
      ->check(CLI::Range(int64_t{10}, int64_t{3'600'000}));
  Flag(app, "--watch-ack-timeout-ms", l.watch_ack_timeout_ms,
       "Near-cache: a Watch with an invalidation unacked for longer is "
       "reported lost to its session's next KeepAlive (the client then "
       "drops its cache, which lets the Invalidate return)",
       "DOGPILED_WATCH_ACK_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
}

std::vector<std::string> ArgsWithEnvironment(const CLI::App& app, int argc,
                                             const char* const* argv) {
  std::vector<std::string> args;
  for (const CLI::Option* opt : app.get_options()) {
    const std::string& env = opt->get_envname();
    const char* value = env.empty() ? nullptr : std::getenv(env.c_str());
    if (value != nullptr && !opt->get_lnames().empty()) {
      if (opt->get_expected_max() == 0) {  // a flag: its value must be joined
        args.push_back("--" + opt->get_lnames().front() + "=" + value);
        continue;
      }
      args.push_back("--" + opt->get_lnames().front());
      args.push_back(value);
    }
  }
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    // CLI11 reads "--name=" (an empty value) as "--name" and takes the
    // next argument as its value; split it so the value stays empty.
    if (arg.size() > 3 && arg.starts_with("--") && arg.back() == '=' &&
        arg.find('=') == arg.size() - 1) {
      args.push_back(arg.substr(0, arg.size() - 1));
      args.push_back("");
    } else {
      args.push_back(arg);
    }
  }
  std::reverse(args.begin(), args.end());
  return args;
}

std::string Describe(const CLI::App& app) {
  // From the parsed options rather than the Config, so a new flag shows up
  // here without a second list to keep in step.
  std::ostringstream out;
  const CLI::Option* file = app.get_config_ptr();
  out << "config="
      << (file != nullptr && file->count() > 0 ? file->as<std::string>()
                                                : std::string("(none)"));
  for (const CLI::Option* opt : app.get_options()) {
    if (opt == file || opt->get_lnames().empty() ||
        opt->get_lnames().front() == "help") {
      continue;
    }
    std::string name = opt->get_lnames().front();
    std::replace(name.begin(), name.end(), '-', '_');
    // TakeLast: the value in force is the last one given.
    out << ' ' << name << '='
        << (opt->count() > 0 ? opt->results().back() : opt->get_default_str());
  }
  return out.str();
}

}  // namespace dogpiled::daemon
