#include "dogpiled_client.h"

#include <unistd.h>

#include <cstdio>

#include "closed_loop.h"
#include "grpc_util.h"

namespace dogpiled::bench {

DogpiledClient::DogpiledClient(const std::string& target, int connections) {
  for (const auto& channel : MakeChannels(target, connections)) {
    sessions_.push_back(v1::Sessions::NewStub(channel));
    dogpile_.push_back(v1::Dogpile::NewStub(channel));
    rwmutex_.push_back(v1::RWMutex::NewStub(channel));
    if (!admin_) {
      admin_ = v1::Admin::NewStub(channel);
    }
  }
}

std::vector<uint64_t> DogpiledClient::OpenSessions(int n) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext context;
    SetDeadlineMs(context, 10'000);
    v1::OpenRequest request;
    request.set_ttl_ms(3'600'000);
    request.set_client_name("dogpiled_bench");
    v1::OpenResponse response;
    grpc::Status status =
        sessions_[Pick(i)]->Open(&context, request, &response);
    if (!status.ok()) {
      Die("Open: " + Describe(status));
    }
    ids.push_back(response.session_id());
  }
  return ids;
}

void DogpiledClient::Store(const std::string& registry, int64_t first,
                           int64_t last, const std::string& value,
                           uint64_t session, int concurrency) {
  if (last <= first) {
    return;
  }
  Elections elections(this, registry, value, {session}, concurrency, first);
  LoopOptions options;
  options.concurrency = concurrency;
  options.warmup_seconds = 0;
  options.seconds = 3600;  // bounded by max_ops
  options.max_ops = last - first;
  options.max_errors_per_slot = 1;
  LoopResult result = RunClosedLoop(
      options, [&](int slot, int64_t index, OpDone done) {
        elections.Start(slot, index, std::move(done));
      });
  if (result.errors > 0) {
    Die("storing values: " + result.first_error);
  }
}

v1::StatsResponse DogpiledClient::Stats() {
  grpc::ClientContext context;
  SetDeadlineMs(context, 10'000);
  v1::StatsResponse response;
  grpc::Status status = admin_->Stats(&context, {}, &response);
  if (!status.ok()) {
    Die("Stats: " + Describe(status));
  }
  return response;
}

std::string RunRegistry(const std::string& base) {
  return base + "-" + std::to_string(getpid());
}

std::string KeyName(int64_t i) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "key:%08lld", static_cast<long long>(i));
  return buffer;
}

// Each call has its own context, replaced only once that call has ended.
struct Elections::Slot {
  std::unique_ptr<grpc::ClientContext> acquire_context;
  std::unique_ptr<grpc::ClientContext> publish_context;
  v1::AcquireRequest acquire;
  v1::AcquireResponse acquired;
  v1::PublishRequest publish;
  v1::PublishResponse published;
};

Elections::Elections(DogpiledClient* client, std::string registry,
                     std::string value, std::vector<uint64_t> sessions,
                     int slots, int64_t first_key)
    : client_(client),
      registry_(std::move(registry)),
      value_(std::move(value)),
      sessions_(std::move(sessions)),
      first_key_(first_key) {
  for (int i = 0; i < slots; ++i) {
    slots_.push_back(std::make_unique<Slot>());
  }
}

Elections::~Elections() = default;

void Elections::Start(int slot_index, int64_t index,
                      std::function<void(bool, const std::string&)> done) {
  Slot* slot = slots_[slot_index].get();
  const uint64_t session = sessions_[slot_index % sessions_.size()];
  slot->acquire.set_registry(registry_);
  slot->acquire.set_key(KeyName(first_key_ + index));
  slot->acquire.set_session_id(session);
  slot->acquire.set_expire_ms(3'600'000);
  slot->acquire_context = std::make_unique<grpc::ClientContext>();
  SetDeadlineMs(*slot->acquire_context, 10'000);
  v1::Dogpile::Stub& stub = client_->dogpile(slot_index);
  stub.async()->Acquire(
      slot->acquire_context.get(), &slot->acquire, &slot->acquired,
      [this, slot, session, &stub, done](grpc::Status status) {
        if (!status.ok() ||
            slot->acquired.outcome() != v1::AcquireResponse::OUTCOME_CREATE) {
          done(false, status.ok() ? "Acquire: not CREATE on a new key"
                                  : "Acquire: " + Describe(status));
          return;
        }
        slot->publish.set_registry(registry_);
        slot->publish.set_key(slot->acquire.key());
        slot->publish.set_session_id(session);
        slot->publish.set_token(slot->acquired.token());
        slot->publish.set_value(value_);
        slot->publish_context = std::make_unique<grpc::ClientContext>();
        SetDeadlineMs(*slot->publish_context, 10'000);
        stub.async()->Publish(slot->publish_context.get(), &slot->publish,
                              &slot->published, [done](grpc::Status status) {
                                done(status.ok(), status.ok()
                                                      ? ""
                                                      : "Publish: " +
                                                            Describe(status));
                              });
      });
}

}  // namespace dogpiled::bench
