#include "cli/commands.h"

#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "cli/child.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "dogpiled/dogpiled.h"

namespace dogpilectl {
namespace {

using std::chrono::milliseconds;

// Thrown by the creator of `get` to hand the role back.
struct NoCreator {};
struct CreateFailed {
  int exit_code;
};

int ExitFor(const dogpiled::Status& status) {
  switch (status.code()) {
    case dogpiled::StatusCode::kUnavailable:
    case dogpiled::StatusCode::kDeadlineExceeded:
    case dogpiled::StatusCode::kCancelled:
      return kExitUnavailable;
    default:
      return kExitRefused;
  }
}

int Fail(const dogpiled::Status& status) {
  PrintError(status.ToString());
  return ExitFor(status);
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    PrintError("cannot read " + path);
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

// Null (after printing why) if a TLS file cannot be read.
std::unique_ptr<dogpiled::Client> MakeClient(const GlobalFlags& g) {
  dogpiled::ClientOptions options;
  options.target = g.target;
  options.rpc_timeout = milliseconds(g.timeout_ms);
  options.bearer_token = g.token;
  options.tls.enabled = g.tls;
  options.tls.server_name_override = g.tls_server_name;
  if ((!g.ca_file.empty() && !ReadFile(g.ca_file, &options.tls.root_certs_pem)) ||
      (!g.cert_file.empty() &&
       !ReadFile(g.cert_file, &options.tls.cert_chain_pem)) ||
      (!g.key_file.empty() &&
       !ReadFile(g.key_file, &options.tls.private_key_pem))) {
    return nullptr;
  }
  return std::make_unique<dogpiled::Client>(options);
}

}  // namespace

int RunPeek(const GlobalFlags& global, const PeekFlags& flags) {
  std::unique_ptr<dogpiled::Client> client = MakeClient(global);
  if (!client) {
    return kExitUsage;
  }
  auto peeked = client->Peek(flags.registry, flags.key,
                             milliseconds(flags.expire_ms));
  if (!peeked.ok()) {
    return Fail(peeked.status());
  }
  PrintPeek({flags.registry, flags.key}, *peeked, global.json);
  return peeked->has_value ? kExitOk : kExitNo;
}

int RunGet(const GlobalFlags& global, const GetFlags& flags) {
  std::unique_ptr<dogpiled::Client> client = MakeClient(global);
  if (!client) {
    return kExitUsage;
  }
  dogpiled::SessionOptions session_options;
  session_options.ttl = milliseconds(flags.ttl_ms);
  auto session = dogpiled::Session::Open(*client, session_options);
  if (!session.ok()) {
    return Fail(session.status());
  }
  dogpiled::DogpileOptions options;
  options.expiretime = milliseconds(flags.expire_ms);
  options.wait_timeout = milliseconds(flags.wait_ms);
  options.creation_timeout = milliseconds(flags.creation_timeout_ms);
  dogpiled::Dogpile dogpile(*session, flags.registry, flags.key, options);
  auto creator = [&flags]() -> std::string {
    if (!flags.create) {
      throw NoCreator{};
    }
    Captured made = RunShellCapture(*flags.create);
    if (made.exit_code != 0) {
      throw CreateFailed{made.exit_code};
    }
    return std::move(made.out);
  };
  try {
    const dogpiled::AcquireResult got = dogpile.acquire_result(creator);
    if (!got.stored) {
      PrintError("warning: the new value was not stored: the creator role "
                 "was lost meanwhile (invalidated or timed out)");
    }
    PrintGet({flags.registry, flags.key}, got, global.json);
    return kExitOk;
  } catch (const NoCreator&) {
    PrintError("no value for " + flags.registry + "/" + flags.key +
               ", and no --create to make one");
    return kExitNo;
  } catch (const CreateFailed& failed) {
    PrintError("--create command exited with " +
               std::to_string(failed.exit_code) +
               "; the creator role was handed on");
    return kExitCreateFailed;
  } catch (const dogpiled::Error& e) {
    if (e.status().code() == dogpiled::StatusCode::kDeadlineExceeded) {
      PrintError("no value within --wait: " + e.status().message());
      return kExitWaitTimeout;
    }
    return Fail(e.status());
  }
}

int RunInvalidate(const GlobalFlags& global, const InvalidateFlags& flags) {
  std::unique_ptr<dogpiled::Client> client = MakeClient(global);
  if (!client) {
    return kExitUsage;
  }
  if (dogpiled::Status s =
          client->Invalidate(flags.registry, flags.key, flags.hard);
      !s.ok()) {
    return Fail(s);
  }
  PrintInvalidated({flags.registry, flags.key}, flags.hard, global.json);
  return kExitOk;
}

int RunLock(const GlobalFlags& global, const LockFlags& flags) {
  std::unique_ptr<dogpiled::Client> client = MakeClient(global);
  if (!client) {
    return kExitUsage;
  }
  // Shared with the keep-alive thread, which stops CMD if the lease is
  // lost: running on without the lock would be worse than stopping.
  struct Watch {
    std::mutex mu;
    Child* child = nullptr;
    bool lost = false;
  };
  auto watch = std::make_shared<Watch>();
  dogpiled::SessionOptions session_options;
  session_options.ttl = milliseconds(flags.ttl_ms);
  session_options.on_lost = [watch](const dogpiled::Status&) {
    std::lock_guard<std::mutex> lock(watch->mu);
    watch->lost = true;
    if (watch->child != nullptr) {
      watch->child->Terminate();
    }
  };
  auto session = dogpiled::Session::Open(*client, session_options);
  if (!session.ok()) {
    return Fail(session.status());
  }
  dogpiled::ReadWriteMutexOptions options;
  options.wait_timeout = milliseconds(flags.wait_ms);
  dogpiled::ReadWriteMutex mutex(*session, flags.registry, flags.key,
                                 options);
  bool granted = false;
  try {
    granted = flags.read ? mutex.acquire_read_lock(!flags.nonblock)
                         : mutex.acquire_write_lock(!flags.nonblock);
  } catch (const dogpiled::Error& e) {
    return Fail(e.status());
  }
  if (!granted) {
    PrintError(std::string(flags.read ? "read" : "write") + " lock on " +
               flags.registry + "/" + flags.key + " not granted");
    return kExitNo;
  }
  ForwardSignalsToCommand();
  Child child(flags.command);
  if (!child.start_error().empty()) {
    PrintError("cannot run " + child.start_error());
  }
  {
    std::lock_guard<std::mutex> lock(watch->mu);
    watch->child = &child;
    if (watch->lost) {
      child.Terminate();
    }
  }
  const int code = child.Wait();
  {
    std::lock_guard<std::mutex> lock(watch->mu);
    watch->child = nullptr;
  }
  if (flags.read) {
    mutex.release_read_lock();
  } else {
    mutex.release_write_lock();
  }
  std::lock_guard<std::mutex> lock(watch->mu);
  if (watch->lost) {
    PrintError("session lost while the command ran (" +
               session->loss_reason().ToString() +
               "); the command was sent SIGTERM");
    return kExitSessionLost;
  }
  return code;
}

int RunStats(const GlobalFlags& global) {
  std::unique_ptr<dogpiled::Client> client = MakeClient(global);
  if (!client) {
    return kExitUsage;
  }
  auto stats = client->GetStats();
  if (!stats.ok()) {
    return Fail(stats.status());
  }
  PrintStats(*stats, global.json);
  return kExitOk;
}

int RunCluster(const GlobalFlags& global) {
  std::unique_ptr<dogpiled::Client> client = MakeClient(global);
  if (!client) {
    return kExitUsage;
  }
  auto cluster = client->GetCluster();
  if (!cluster.ok()) {
    return Fail(cluster.status());
  }
  PrintCluster(*cluster, global.json);
  return kExitOk;
}

int RunMember(const GlobalFlags& global, const MemberFlags& flags) {
  std::unique_ptr<dogpiled::Client> client = MakeClient(global);
  if (!client) {
    return kExitUsage;
  }
  auto cluster = flags.add ? client->AddMember(flags.id, flags.raft_address)
                           : client->RemoveMember(flags.id);
  if (!cluster.ok()) {
    return Fail(cluster.status());
  }
  PrintCluster(*cluster, global.json);
  return kExitOk;
}

int RunHealth(const GlobalFlags& global, const HealthFlags& flags) {
  std::unique_ptr<dogpiled::Client> client = MakeClient(global);
  if (!client) {
    return kExitUsage;
  }
  auto health = client->CheckHealth(flags.service);
  if (!health.ok()) {
    return Fail(health.status());
  }
  PrintHealth(flags.service, *health, global.json);
  return *health == dogpiled::HealthStatus::kServing ? kExitOk : kExitNo;
}

}  // namespace dogpilectl
