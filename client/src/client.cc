#include "dogpiled/client.h"

#include <unistd.h>

#include <utility>

#include "src/client_impl.h"

namespace dogpiled {
namespace internal {
ClientImpl::ClientImpl(ClientOptions options)
    : options_(std::move(options)), members_(options_) {}

void ClientImpl::Authorize(grpc::ClientContext& ctx) const {
  if (!options_.bearer_token.empty()) {
    ctx.AddMetadata("authorization", "Bearer " + options_.bearer_token);
  }
}

StatusOr<HealthStatus> ClientImpl::CheckHealth(const std::string& service) {
  using grpc::health::v1::HealthCheckResponse;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  if (Status s = Call(&grpc::health::v1::Health::Stub::Check,
                      request, &response);
      !s.ok()) {
    return s;
  }
  switch (response.status()) {
    case HealthCheckResponse::SERVING: return HealthStatus::kServing;
    case HealthCheckResponse::NOT_SERVING: return HealthStatus::kNotServing;
    case HealthCheckResponse::SERVICE_UNKNOWN:
      return HealthStatus::kServiceUnknown;
    default: return HealthStatus::kUnknown;
  }
}

StatusOr<PeekResult> ClientImpl::Peek(const std::string& registry,
                                      const std::string& key,
                                      std::chrono::milliseconds expire) {
  v1::PeekRequest request;
  request.set_registry(registry);
  request.set_key(key);
  request.set_expire_ms(expire.count());
  v1::PeekResponse r;
  if (Status s = Call(&v1::Dogpile::Stub::Peek, request, &r);
      !s.ok()) {
    return s;
  }
  PeekResult out;
  out.has_value = r.has_value();
  out.value = r.value();
  out.created_time = r.created_time();
  out.is_expired = r.is_expired();
  out.creating = r.creating();
  return out;
}

Status ClientImpl::Invalidate(const std::string& registry,
                              const std::string& key, bool hard) {
  v1::InvalidateRequest request;
  request.set_registry(registry);
  request.set_key(key);
  request.set_hard(hard);
  v1::InvalidateResponse r;
  return Call(&v1::Dogpile::Stub::Invalidate, request, &r);
}

std::string DefaultClientName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) {
    host[0] = '\0';
  }
  return std::to_string(getpid()) + "@" + host;
}

}  // namespace internal

const char* HealthStatusName(HealthStatus status) {
  switch (status) {
    case HealthStatus::kServing: return "SERVING";
    case HealthStatus::kNotServing: return "NOT_SERVING";
    case HealthStatus::kServiceUnknown: return "SERVICE_UNKNOWN";
    case HealthStatus::kUnknown: break;
  }
  return "UNKNOWN";
}

Client::Client(ClientOptions options)
    : impl_(std::make_shared<internal::ClientImpl>(std::move(options))) {}

Client::Client(const std::string& target)
    : Client([&] {
        ClientOptions options;
        options.target = target;
        return options;
      }()) {}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

const ClientOptions& Client::options() const { return impl_->options(); }

StatusOr<Stats> Client::GetStats() const {
  internal::v1::StatsResponse r;
  if (Status s = impl_->Call(&internal::v1::Admin::Stub::Stats,
                             internal::v1::StatsRequest(), &r);
      !s.ok()) {
    return s;
  }
  Stats out;
  const auto* descriptor = r.GetDescriptor();
  const auto* reflection = r.GetReflection();
#define DOGPILED_STATS_GET(name, number) \
  out.name = reflection->GetUInt64(r, descriptor->FindFieldByNumber(number));
  DOGPILED_STATS_FIELDS(DOGPILED_STATS_GET)
#undef DOGPILED_STATS_GET
  return out;
}

namespace {

Cluster FromProto(const internal::v1::ClusterResponse& r) {
  Cluster out;
  for (const auto& m : r.members()) {
    const char* role = m.role() == internal::v1::ClusterMember::LEADER ? "leader"
                       : m.role() == internal::v1::ClusterMember::CANDIDATE
                           ? "candidate"
                           : "follower";
    out.members.push_back(
        {m.id(), m.raft_address(), m.client_address(), role, m.voter()});
  }
  out.self_id = r.self_id();
  out.leader_id = r.leader_id();
  out.leader_client_address = r.leader_client_address();
  out.term = r.term();
  out.commit_index = r.commit_index();
  out.applied_index = r.applied_index();
  out.serving = r.serving();
  return out;
}

}  // namespace

StatusOr<Cluster> Client::GetCluster() const {
  internal::v1::ClusterResponse r;
  if (Status s = impl_->Call(&internal::v1::Admin::Stub::Cluster,
                             internal::v1::ClusterRequest(), &r);
      !s.ok()) {
    return s;
  }
  return FromProto(r);
}

StatusOr<Cluster> Client::AddMember(uint64_t id,
                                    const std::string& raft_address,
                                    std::chrono::milliseconds wait) const {
  internal::v1::AddMemberRequest request;
  request.set_id(id);
  request.set_raft_address(raft_address);
  internal::v1::AddMemberResponse r;
  if (Status s = impl_->Call(&internal::v1::Admin::Stub::AddMember, request,
                             &r, wait);
      !s.ok()) {
    return s;
  }
  return FromProto(r.cluster());
}

StatusOr<Cluster> Client::RemoveMember(uint64_t id,
                                       std::chrono::milliseconds wait) const {
  internal::v1::RemoveMemberRequest request;
  request.set_id(id);
  internal::v1::RemoveMemberResponse r;
  if (Status s = impl_->Call(&internal::v1::Admin::Stub::RemoveMember,
                             request, &r, wait);
      !s.ok()) {
    return s;
  }
  return FromProto(r.cluster());
}

StatusOr<PeekResult> Client::Peek(const std::string& registry,
                                  const std::string& key,
                                  std::chrono::milliseconds expire) const {
  return impl_->Peek(registry, key, expire);
}

Status Client::Invalidate(const std::string& registry, const std::string& key,
                          bool hard) const {
  return impl_->Invalidate(registry, key, hard);
}

StatusOr<HealthStatus> Client::CheckHealth(const std::string& service) const {
  return impl_->CheckHealth(service);
}

}  // namespace dogpiled
