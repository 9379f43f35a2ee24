#include "src/members.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

namespace dogpiled::internal {
namespace {

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) {
    return "";
  }
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

// "host:port" or "[v6]:port" split; false for anything else.
bool SplitHostPort(const std::string& target, std::string* host,
                   std::string* port) {
  if (target.find("://") != std::string::npos ||
      target.rfind("unix:", 0) == 0 || target.rfind("dns:", 0) == 0 ||
      target.rfind("ipv4:", 0) == 0 || target.rfind("ipv6:", 0) == 0) {
    return false;
  }
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos || colon + 1 == target.size()) {
    return false;
  }
  *host = target.substr(0, colon);
  *port = target.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return !host->empty() &&
         port->find_first_not_of("0123456789") == std::string::npos;
}

bool IsIpLiteral(const std::string& host) {
  in6_addr buf;
  return inet_pton(AF_INET, host.c_str(), &buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &buf) == 1;
}

}  // namespace

std::vector<std::string> ResolveName(const std::string& host,
                                     const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) {
    return {};
  }
  std::vector<std::string> out;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    std::string address;
    if (a->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) {
        continue;
      }
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
      address = std::string(text) + ":" + port;
    } else if (a->ai_family == AF_INET6) {
      const auto* in = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
      if (IN6_IS_ADDR_LOOPBACK(&in->sin6_addr)) {
        continue;
      }
      inet_ntop(AF_INET6, &in->sin6_addr, text, sizeof(text));
      address = "[" + std::string(text) + "]:" + port;
    } else {
      continue;
    }
    if (std::find(out.begin(), out.end(), address) == out.end()) {
      out.push_back(address);
    }
  }
  freeaddrinfo(found);
  return out;
}

namespace {

std::shared_ptr<grpc::Channel> MakeChannel(const ClientOptions& options,
                                           const std::string& address,
                                           const std::string& tls_name,
                                           bool grouped) {
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls.enabled) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls.root_certs_pem;
    ssl.pem_cert_chain = options.tls.cert_chain_pem;
    ssl.pem_private_key = options.tls.private_key_pem;
    credentials = grpc::SslCredentials(ssl);
    const std::string& name = options.tls.server_name_override.empty()
                                  ? tls_name
                                  : options.tls.server_name_override;
    if (!name.empty()) {
      args.SetSslTargetNameOverride(name);
    }
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  // Values may be up to the daemon's limit (1 MiB by default, configurable).
  args.SetMaxReceiveMessageSize(-1);
  // gRPC's default reconnect backoff grows from 1 s to 2 min; a session
  // must be renewed within its TTL (10 s by default), so come back sooner
  // after a daemon restart or a network blip. (Not MIN_RECONNECT_BACKOFF:
  // gRPC also uses it as the connect timeout, and a short one fails
  // handshakes with a busy daemon.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  if (grouped) {
    // A group's member that hangs rather than dies (SIGSTOP, a partition)
    // is found out in about 2 s: the connection closes, its calls fail
    // UNAVAILABLE and go to the next member. The daemon allows a ping
    // every 500 ms. Not for a single daemon: there is nowhere else to go,
    // and a connection that still carries the client's requests (though
    // not the answers) is worth more than a new one that cannot be set up.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  return grpc::CreateCustomChannel(address, credentials, args);
}

}  // namespace

std::vector<std::string> ExpandTarget(const std::string& target,
                                      const Resolver& resolve) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= target.size()) {
    size_t comma = target.find(',', start);
    if (comma == std::string::npos) {
      comma = target.size();
    }
    std::string entry = Trim(target.substr(start, comma - start));
    if (!entry.empty() &&
        std::find(out.begin(), out.end(), entry) == out.end()) {
      out.push_back(std::move(entry));
    }
    start = comma + 1;
  }
  if (out.size() != 1) {
    return out.empty() ? std::vector<std::string>{target} : out;
  }
  std::string host, port;
  if (!SplitHostPort(out[0], &host, &port) || IsIpLiteral(host)) {
    return out;
  }
  std::vector<std::string> resolved = resolve(host, port);
  return resolved.size() > 1 ? resolved : out;
}

Members::Members(const ClientOptions& options, Resolver resolve)
    : options_(options), resolve_(std::move(resolve)) {
  const std::vector<std::string> addresses =
      ExpandTarget(options.target, resolve_);
  std::string host, port;
  if (addresses.size() > 1 && options.target.find(',') == std::string::npos &&
      SplitHostPort(options.target, &host, &port)) {
    name_host_ = host;
    name_port_ = port;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& address : addresses) {
    // A member reached by an IP its group's name resolved to shows a
    // certificate for that name.
    AddLocked(address, name_host_, addresses.size() > 1);
  }
}

bool Members::ResolveAgain() {
  std::vector<std::string> found = resolve_(name_host_, name_port_);
  std::lock_guard<std::mutex> lock(mu_);
  bool added = false;
  for (const std::string& address : found) {
    if (std::none_of(members_.begin(), members_.end(),
                     [&](const auto& m) { return m->address == address; })) {
      AddLocked(address, name_host_, /*grouped=*/true);
      if (!added) {
        current_ = members_.size() - 1;  // a new address: likely up
        added = true;
      }
    }
  }
  return added;
}

void Members::AddLocked(const std::string& address,
                        const std::string& tls_name, bool grouped) {
  auto m = std::make_unique<Member>();
  m->address = address;
  m->channel = MakeChannel(options_, address, tls_name, grouped);
  m->sessions = v1::Sessions::NewStub(m->channel);
  m->dogpile = v1::Dogpile::NewStub(m->channel);
  m->rwmutex = v1::RWMutex::NewStub(m->channel);
  m->admin = v1::Admin::NewStub(m->channel);
  m->health = grpc::health::v1::Health::NewStub(m->channel);
  members_.push_back(std::move(m));
}

Member& Members::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  return *members_[current_];
}

bool Members::grouped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return members_.size() > 1;
}

bool Members::NoteFailure(const Member& tried, const Status& status) {
  if (status.code() != StatusCode::kUnavailable &&
      status.code() != StatusCode::kDeadlineExceeded) {
    return false;
  }
  std::string leader;
  if (status.reason() == "NOT_LEADER") {
    if (auto it = status.metadata().find("leader");
        it != status.metadata().end()) {
      leader = it->second;
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (members_[current_].get() != &tried) {
    return true;  // another call moved on already
  }
  if (!leader.empty()) {
    auto named = std::find_if(
        members_.begin(), members_.end(),
        [&](const std::unique_ptr<Member>& m) { return m->address == leader; });
    if (named == members_.end()) {
      // The leader's own name, as it advertises.
      AddLocked(leader, "", /*grouped=*/true);
      named = members_.end() - 1;
    }
    const size_t index = named - members_.begin();
    if (index != current_) {
      current_ = index;
      return true;
    }
  }
  if (members_.size() > 1) {
    current_ = (current_ + 1) % members_.size();
  }
  const auto now = std::chrono::steady_clock::now();
  if (current_ == 0 && !name_host_.empty() && leader.empty() &&
      now - resolved_at_ >= kResolveEvery) {
    resolved_at_ = now;
    lock.unlock();  // getaddrinfo may take a while
    return ResolveAgain();
  }
  return false;
}

}  // namespace dogpiled::internal
