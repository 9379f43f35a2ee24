// dogpilectl's subcommands. Each returns the process exit code (see
// exit_codes.h) and prints its own output and errors.
//
// Thread-compatible: called once, from main.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dogpilectl {

struct GlobalFlags {
  std::string target = "127.0.0.1:7420";
  bool json = false;
  int64_t timeout_ms = 5000;
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string tls_server_name;
  std::string token;  // bearer token for protected registries
};

struct PeekFlags {
  std::string registry;
  std::string key;
  int64_t expire_ms = 0;
};

struct GetFlags {
  std::string registry;
  std::string key;
  std::optional<std::string> create;  // shell command whose stdout is the value
  int64_t expire_ms = 0;
  int64_t wait_ms = 30'000;
  int64_t creation_timeout_ms = 0;
  int64_t ttl_ms = 0;
};

struct InvalidateFlags {
  std::string registry;
  std::string key;  // empty: the whole registry
  bool hard = false;
};

struct LockFlags {
  std::string registry;
  std::string key;
  bool read = false;
  bool write = false;
  bool nonblock = false;
  int64_t wait_ms = -1;  // negative: as long as it takes
  int64_t ttl_ms = 0;
  std::vector<std::string> command;
};

struct HealthFlags {
  std::string service;
};

// `member add ID RAFT_ADDRESS` / `member remove ID`.
struct MemberFlags {
  bool add = false;
  uint64_t id = 0;
  std::string raft_address;  // add's
};

int RunPeek(const GlobalFlags& global, const PeekFlags& flags);
int RunGet(const GlobalFlags& global, const GetFlags& flags);
int RunInvalidate(const GlobalFlags& global, const InvalidateFlags& flags);
int RunLock(const GlobalFlags& global, const LockFlags& flags);
int RunStats(const GlobalFlags& global);
int RunCluster(const GlobalFlags& global);
int RunMember(const GlobalFlags& global, const MemberFlags& flags);
int RunHealth(const GlobalFlags& global, const HealthFlags& flags);

}  // namespace dogpilectl
