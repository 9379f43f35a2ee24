// dogpilectl: the operator's command line for dogpiled, built on the SDK.
#include <CLI/CLI.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/exit_codes.h"

namespace {

using dogpilectl::GlobalFlags;

void AddGlobalFlags(CLI::App& app, GlobalFlags& g) {
  app.add_option("--target", g.target,
                 "Daemon address, HOST:PORT; a replicated group's members as\n"
                 "H1:P1,H2:P2,H3:P3, or one DNS name resolving to all of them")
      ->envname("DOGPILED_TARGET")
      ->capture_default_str();
  app.add_flag("--json", g.json, "Print JSON for scripts");
  app.add_option("--timeout", g.timeout_ms,
                 "Deadline of each call in milliseconds, beyond any wait it "
                 "asks for")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--tls", g.tls, "Connect with TLS");
  app.add_option("--ca-file", g.ca_file, "TLS root certificates (PEM)");
  app.add_option("--cert-file", g.cert_file, "TLS client certificate (PEM)");
  app.add_option("--key-file", g.key_file, "TLS client key (PEM)");
  app.add_option("--tls-server-name", g.tls_server_name,
                 "Expect this name in the daemon's certificate");
  app.add_option("--token", g.token,
                 "Bearer token for registries the daemon protects")
      ->envname("DOGPILED_TOKEN");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dogpilectl: look into and drive a dogpiled daemon. Registry and key\n"
      "name an entry; values are bytes."};
  app.footer(dogpilectl::kExitCodesHelp);
  app.set_version_flag("--version", DOGPILED_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand too
  GlobalFlags global;
  AddGlobalFlags(app, global);

  dogpilectl::PeekFlags peek;
  CLI::App* peek_cmd = app.add_subcommand(
      "peek", "Show a key's value without taking any role (exit 1: none)");
  peek_cmd->add_option("registry", peek.registry)->required();
  peek_cmd->add_option("key", peek.key)->required();
  peek_cmd->add_option("--expire", peek.expire_ms,
                       "Judge expiry with this expire_ms (0: never)");

  dogpilectl::GetFlags get;
  CLI::App* get_cmd = app.add_subcommand(
      "get",
      "Acquire a key's value: fresh, stale, or made now by --create CMD "
      "(a shell command whose stdout becomes the value) if elected");
  get_cmd->add_option("registry", get.registry)->required();
  get_cmd->add_option("key", get.key)->required();
  get_cmd->add_option("--create", get.create,
                      "Shell command that prints the new value");
  get_cmd->add_option("--expire", get.expire_ms,
                      "Value lifetime in ms (0: never expires)")
      ->capture_default_str();
  get_cmd->add_option("--wait", get.wait_ms,
                      "How long to wait for another creator, ms")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  get_cmd->add_option("--creation-timeout", get.creation_timeout_ms,
                      "How long CMD may take, ms (0: daemon default)")
      ->check(CLI::NonNegativeNumber);
  get_cmd->add_option("--ttl", get.ttl_ms,
                      "Session TTL in ms (0: daemon default)")
      ->check(CLI::NonNegativeNumber);

  dogpilectl::InvalidateFlags invalidate;
  CLI::App* invalidate_cmd = app.add_subcommand(
      "invalidate",
      "Mark a key (or, with no key, the whole registry) expired");
  invalidate_cmd->add_option("registry", invalidate.registry)->required();
  invalidate_cmd->add_option("key", invalidate.key,
                             "Omit to invalidate every key of the registry");
  invalidate_cmd->add_flag("--hard", invalidate.hard,
                           "Values become absent, not stale fallbacks");

  dogpilectl::LockFlags lock;
  CLI::App* lock_cmd = app.add_subcommand(
      "lock",
      "Run a command while holding a read or write lock, like flock(1):\n"
      "  dogpilectl lock --write jobs nightly -- ./nightly.sh\n"
      "Exits with the command's status.");
  lock_cmd->add_option("registry", lock.registry)->required();
  lock_cmd->add_option("key", lock.key)->required();
  lock_cmd->add_option("command", lock.command, "Command and arguments")
      ->required();
  CLI::Option* read = lock_cmd->add_flag("--read", lock.read, "Shared lock");
  CLI::Option* write =
      lock_cmd->add_flag("--write", lock.write, "Exclusive lock");
  read->excludes(write);
  lock_cmd->add_flag("-n,--nonblock", lock.nonblock,
                     "Fail (exit 1) rather than wait");
  lock_cmd->add_option("--wait", lock.wait_ms,
                       "Give up (exit 1) after this many ms")
      ->check(CLI::NonNegativeNumber);
  lock_cmd->add_option("--ttl", lock.ttl_ms,
                       "Session TTL in ms (0: daemon default)")
      ->check(CLI::NonNegativeNumber);

  app.add_subcommand("stats", "Print the daemon's gauges and counters");
  CLI::App* cluster_cmd = app.add_subcommand(
      "cluster",
      "Print the replicated group as this member sees it (* marks it)");

  dogpilectl::MemberFlags member;
  CLI::App* member_cmd = app.add_subcommand(
      "member", "Add or remove a member of the replicated group (the leader "
                "does it; docs/operations.md)");
  member_cmd->require_subcommand(1);
  CLI::App* member_add = member_cmd->add_subcommand(
      "add", "Add member ID, running with --join, whose Raft listens on "
             "RAFT_ADDRESS; waits until it has caught up and votes");
  member_add->add_option("id", member.id, "Its --node-id")
      ->required()
      ->check(CLI::PositiveNumber);
  member_add->add_option("raft_address", member.raft_address,
                         "HOST:PORT its peers reach its Raft on")
      ->required();
  CLI::App* member_remove =
      member_cmd->add_subcommand("remove", "Remove member ID from the group");
  member_remove->add_option("id", member.id, "Its --node-id")
      ->required()
      ->check(CLI::PositiveNumber);

  dogpilectl::HealthFlags health;
  CLI::App* health_cmd = app.add_subcommand(
      "health", "grpc.health.v1 check (exit 0: SERVING, 1: not)");
  health_cmd->add_option("--service", health.service,
                         "Service name (default: the whole daemon)");

  try {
    app.parse(argc, argv);
    if (lock_cmd->parsed() && lock.read == lock.write) {
      throw CLI::ValidationError("lock", "give exactly one of --read, --write");
    }
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? dogpilectl::kExitOk : dogpilectl::kExitUsage;
  }

  if (peek_cmd->parsed()) {
    return dogpilectl::RunPeek(global, peek);
  }
  if (get_cmd->parsed()) {
    return dogpilectl::RunGet(global, get);
  }
  if (invalidate_cmd->parsed()) {
    return dogpilectl::RunInvalidate(global, invalidate);
  }
  if (lock_cmd->parsed()) {
    return dogpilectl::RunLock(global, lock);
  }
  if (health_cmd->parsed()) {
    return dogpilectl::RunHealth(global, health);
  }
  if (cluster_cmd->parsed()) {
    return dogpilectl::RunCluster(global);
  }
  if (member_cmd->parsed()) {
    member.add = member_add->parsed();
    return dogpilectl::RunMember(global, member);
  }
  return dogpilectl::RunStats(global);
}
