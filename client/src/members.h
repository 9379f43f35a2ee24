// The daemons a Client talks to: one, or the members of a replicated group
// (docs/replication.md), each with its own channel and stubs, and which of
// them is believed to lead.
//
// A group is given as "h1:p1,h2:p2,h3:p3", or as one DNS name that
// resolves to several non-loopback addresses (a Kubernetes headless
// service). Calls go to the member believed to lead; a follower refuses
// with UNAVAILABLE, reason NOT_LEADER, naming the leader's client address,
// and the call moves there (added if it was not listed). A member that
// cannot be reached moves calls on to the next one.
//
// Thread-safe. Members are only ever added, so a Member reference stays
// valid as long as the Members does.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dogpiled/client.h"
#include "dogpiled/status.h"
#include "dogpiled/v1/admin.grpc.pb.h"
#include "dogpiled/v1/dogpile.grpc.pb.h"
#include "dogpiled/v1/rwmutex.grpc.pb.h"
#include "dogpiled/v1/sessions.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace dogpiled::internal {

namespace v1 = ::dogpiled::v1;

struct Member {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Sessions::Stub> sessions;
  std::unique_ptr<v1::Dogpile::Stub> dogpile;
  std::unique_ptr<v1::RWMutex::Stub> rwmutex;
  std::unique_ptr<v1::Admin::Stub> admin;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;

  template <typename Stub>
  Stub& stub() {
    if constexpr (std::is_same_v<Stub, v1::Sessions::Stub>) {
      return *sessions;
    } else if constexpr (std::is_same_v<Stub, v1::Dogpile::Stub>) {
      return *dogpile;
    } else if constexpr (std::is_same_v<Stub, v1::RWMutex::Stub>) {
      return *rwmutex;
    } else if constexpr (std::is_same_v<Stub, v1::Admin::Stub>) {
      return *admin;
    } else {
      static_assert(std::is_same_v<Stub, grpc::health::v1::Health::Stub>);
      return *health;
    }
  }
};

// The distinct non-loopback "ip:port" addresses a host name resolves to
// (getaddrinfo; a seam for tests).
using Resolver = std::function<std::vector<std::string>(
    const std::string& host, const std::string& port)>;
std::vector<std::string> ResolveName(const std::string& host,
                                     const std::string& port);

// The addresses `target` names: its comma-separated entries; or, for one
// "name:port" whose name resolves to more than one address that is not
// loopback, each of those ("localhost" stays one daemon). Anything else
// (an IP, a gRPC URI such as "unix:..." or "dns:///...") is one entry.
std::vector<std::string> ExpandTarget(const std::string& target,
                                      const Resolver& resolve = ResolveName);

class Members {
 public:
  // A group given as one name is resolved again when a whole round of its
  // members failed (at most every kResolveEvery): pods that come back on
  // new IPs are found without a restart of the client.
  explicit Members(const ClientOptions& options,
                   Resolver resolve = ResolveName);
  static constexpr std::chrono::seconds kResolveEvery{1};
  Members(const Members&) = delete;
  Members& operator=(const Members&) = delete;

  // The member calls go to now.
  Member& Current();
  // Learns from a call to `tried` that ended with `status`. Returns true
  // if the call is worth sending again at once: a follower named a leader
  // other than `tried`, or another call already moved on. On any other
  // UNAVAILABLE or DEADLINE_EXCEEDED the next call goes to the next member
  // (a member that timed out may be stopped or cut off); after the last,
  // a group given as one name is resolved again (true if that found a new
  // member). Other codes teach nothing.
  bool NoteFailure(const Member& tried, const Status& status);
  // More than one member is known: an UNAVAILABLE is worth a retry
  // elsewhere.
  bool grouped() const;

 private:
  // Adds the addresses the group's name resolves to now that are not
  // members yet, and moves calls to the first of them; true if any.
  bool ResolveAgain();
  // tls_name: the name its TLS certificate shows, if not the address's.
  // grouped: known to be a group's member (its channel pings).
  void AddLocked(const std::string& address, const std::string& tls_name,
                 bool grouped);

  const ClientOptions options_;
  const Resolver resolve_;
  // The group's name and port when it was given as one name ("": a list).
  std::string name_host_;
  std::string name_port_;
  mutable std::mutex mu_;
  // The last resolution after a failed round (none yet: the first such
  // round resolves at once). Guarded by mu_.
  std::chrono::steady_clock::time_point resolved_at_{};
  std::vector<std::unique_ptr<Member>> members_;  // guarded by mu_
  size_t current_ = 0;                            // guarded by mu_
};

}  // namespace dogpiled::internal
