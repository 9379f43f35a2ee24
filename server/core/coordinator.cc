// Coordinator plumbing: locking, entry lifetime, tokens, the memory budget,
// parked calls and deadlines. Sessions live in sessions.cc, invalidation in
// invalidation.cc, the dogpile and RW-mutex rules in dogpile.cc and
// rwmutex.cc.
#include "core/coordinator.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/errors.h"
#include "core/op.h"
#include "core/validation.h"

namespace dogpiled::core {
namespace {

// Tokens are reserved in blocks so the store is written rarely, and half a
// block ahead, so a slow store is seldom on the path of a grant.
constexpr Token kTokenBlock = 1 << 16;

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options)
    : limits_(options.limits),
      clock_(options.clock),
      token_store_(options.token_store),
      session_id_source_(std::move(options.session_id_source)),
      observer_(options.observer != nullptr ? options.observer
                                             : &default_observer_),
      journal_(options.journal),
      near_cache_(options.near_cache),
      rng_(options.seed),
      last_token_(options.first_token) {
  if (token_store_ != nullptr) {
    requested_token_ = token_store_->Durable();
  }
}

void Coordinator::Defer(std::function<void()> fn) {
  deferred_.push_back(std::move(fn));
}

void Coordinator::AddDeadline(int64_t deadline_ms) {
  if (!reported_deadline_ || deadline_ms < *reported_deadline_) {
    reported_deadline_ = deadline_ms;
    deadline_moved_ = true;
  }
}

void Coordinator::SetDeadlineHook(std::function<void()> hook) {
  Op op(this);
  deadline_hook_ = std::move(hook);
}

std::optional<int64_t> Coordinator::NextDeadlineMs() {
  Op op(this);
  reported_deadline_ = timers_.NextDeadline();
  deadline_moved_ = false;
  return reported_deadline_;
}

void Coordinator::Tick() {
  Op op(this);  // fires what is due
}

void Coordinator::FireDue() {
  const int64_t now = clock_->NowMs();
  while (auto target = timers_.PopDue(now)) {
    FireTimer(*target);
  }
}

// ------------------------------------------------------ entries, registries

Registry& Coordinator::GetOrCreateRegistry(const std::string& name) {
  auto [it, inserted] = registries_.try_emplace(name);
  if (inserted) {
    it->second.name = name;
    entries_bytes_ += EntryCost(name);
  }
  return it->second;
}

Entry& Coordinator::GetOrCreateEntry(const std::string& registry_name,
                                     const std::string& key) {
  Registry& registry = GetOrCreateRegistry(registry_name);
  auto [it, inserted] = registry.entries.try_emplace(key);
  if (inserted) {
    it->second.registry = &registry;
    it->second.key = key;
    it->second.lru_pos = lru_.end();
    ++entry_count_;
    entries_bytes_ += EntryCost(key);
  }
  return it->second;
}

Registry* Coordinator::FindRegistry(const std::string& name) {
  auto it = registries_.find(name);
  return it == registries_.end() ? nullptr : &it->second;
}

Entry* Coordinator::FindEntry(const std::string& registry_name,
                              const std::string& key) {
  Registry* registry = FindRegistry(registry_name);
  if (registry == nullptr) {
    return nullptr;
  }
  auto it = registry->entries.find(key);
  return it == registry->entries.end() ? nullptr : &it->second;
}

void Coordinator::MaybeCollect(Entry* entry) {
  const int64_t now = clock_->NowMs();
  if (entry->has_value || InUse(*entry) ||
      entry->invalidation.remember_until_ms > now ||
      entry->backoff_until_ms > now) {
    return;
  }
  timers_.Cancel(entry->invalidation.timer);
  timers_.Cancel(entry->backoff_timer);
  UntrackMark(entry->invalidation);
  Registry* registry = entry->registry;
  entries_bytes_ -= EntryCost(entry->key);
  registry->entries.erase(entry->key);
  --entry_count_;
  MaybeCollectRegistry(registry);
}

void Coordinator::MaybeCollectRegistry(Registry* registry) {
  if (!registry->entries.empty() ||
      registry->invalidation.remember_until_ms > clock_->NowMs()) {
    return;
  }
  timers_.Cancel(registry->invalidation.timer);
  UntrackMark(registry->invalidation);
  entries_bytes_ -= EntryCost(registry->name);
  registries_.erase(registry->name);
}

StatusOr<Token> Coordinator::NextToken() {
  const Token token = last_token_ + 1;
  if (token_store_ != nullptr) {
    if (token + kTokenBlock / 2 > requested_token_) {
      requested_token_ = std::max(requested_token_, token) + kTokenBlock;
      token_store_->Reserve(requested_token_);
    }
    if (token > token_store_->Durable()) {
      return Unavailable(
                 "the fencing-token high-water mark is not durable yet (the "
                 "state folder is slow or failing); retry")
          .WithReason(std::string(reason::kTokensNotDurable));
    }
  }
  last_token_ = token;
  return token;
}

// ---------------------------------------------------------- parked calls

Waiter& Coordinator::Park(Entry& entry, SessionId session_id, int64_t wait_ms,
                          std::list<uint64_t>& line, uint64_t request_id) {
  const uint64_t id = next_wait_id_++;
  Waiter& waiter = waiters_[id];
  waiter.id = id;
  waiter.session_id = session_id;
  waiter.tenant = sessions_.at(session_id).tenant;
  ++waiter.tenant->waiters;
  waiter.entry = &entry;
  waiter.parked_ms = clock_->NowMs();
  const int64_t deadline = clock_->NowMs() + wait_ms;
  waiter.timer = timers_.Add(deadline, {TimerTarget::Kind::kWaiter, id, {}, {}});
  AddDeadline(deadline);
  waiter.pos = line.insert(line.end(), id);
  waiter.request_id = request_id;
  Session& session = sessions_.at(session_id);
  session.waits.insert(id);
  if (request_id != 0) {
    session.parked_requests[request_id] = id;
  }
  return waiter;
}

Waiter Coordinator::Unpark(uint64_t wait_id) {
  auto it = waiters_.find(wait_id);
  Waiter waiter = std::move(it->second);
  waiters_.erase(it);
  Entry& entry = *waiter.entry;
  if (waiter.is_lock) {
    entry.rw_line.erase(waiter.pos);
  } else {
    entry.dogpile_line.erase(waiter.pos);
  }
  timers_.Cancel(waiter.timer);
  if (Session* session = FindSession(waiter.session_id)) {
    session->waits.erase(wait_id);
    if (auto it = session->parked_requests.find(waiter.request_id);
        waiter.request_id != 0 && it != session->parked_requests.end() &&
        it->second == wait_id) {
      session->parked_requests.erase(it);
    }
  }
  --waiter.tenant->waiters;
  MaybeDropTenant(waiter.tenant);
  observer_->OnWaitEnded(clock_->NowMs() - waiter.parked_ms);
  return waiter;
}

void Coordinator::Answer(Waiter& waiter, const Status& status) {
  if (waiter.is_lock) {
    Defer([done = std::move(waiter.lock_done), status] { done(status); });
  } else {
    Defer([done = std::move(waiter.acquire_done), status] { done(status); });
  }
}

Status Coordinator::CheckWaitCaps(const std::list<uint64_t>& line,
                                  const Session& session) const {
  if (session.tenant->waiters >= limits_.max_waiters_per_tenant) {
    return LimitReached("waiters: this tenant's quota of " +
                            std::to_string(limits_.max_waiters_per_tenant) +
                            " parked calls is reached",
                        std::string(reason::kTenantWaitersQuota), "wait_timeout_ms",
                        limits_.max_waiters_per_tenant);
  }
  if (waiters_.size() >= limits_.max_waiters) {
    return CapReached(reason::kWaitersTotal, "wait_timeout_ms",
                      limits_.max_waiters,
                      "waiters: the cap of " +
                          std::to_string(limits_.max_waiters) +
                          " parked calls is reached");
  }
  if (line.size() >= limits_.max_waiters_per_key) {
    return CapReached(reason::kWaitersPerKey, "key",
                      limits_.max_waiters_per_key,
                      "key: the cap of " +
                          std::to_string(limits_.max_waiters_per_key) +
                          " parked calls on one key is reached");
  }
  return {};
}

void Coordinator::CancelWait(uint64_t wait_id) {
  Op op(this);
  if (waiters_.count(wait_id) == 0) {
    return;
  }
  Waiter waiter = Unpark(wait_id);
  Answer(waiter, Status(Code::kCancelled, "the caller cancelled the wait")
                     .WithReason(std::string(reason::kCallerCancelled)));
  if (waiter.is_lock) {
    ServeRwLine(*waiter.entry);
  }
  MaybeCollect(waiter.entry);
}

void Coordinator::FireTimer(const TimerTarget& target) {
  const int64_t now = clock_->NowMs();
  switch (target.kind) {
    case TimerTarget::Kind::kSession: {
      Session* session = FindSession(target.id);
      if (session == nullptr) {
        return;
      }
      if (session->deadline_ms > now) {  // renewed since the timer was set
        session->timer = timers_.Add(
            session->deadline_ms, {TimerTarget::Kind::kSession, session->id,
                                   {}, {}});
        AddDeadline(session->deadline_ms);
        return;
      }
      EndSession(session, /*expired=*/true);
      return;
    }
    case TimerTarget::Kind::kCreator: {
      Entry* entry = FindEntry(target.registry, target.key);
      if (entry == nullptr || !entry->creator ||
          entry->creator->token != target.id) {
        return;
      }
      ++stats_.creation_timeouts;
      observer_->OnCreationTimeout(target.registry, target.key, target.id);
      entry->creator->timer = 0;  // this timer is the one firing
      ReleaseCreator(*entry);
      ServeDogpileLine(*entry);
      MaybeCollect(entry);
      return;
    }
    case TimerTarget::Kind::kWaiter: {
      if (waiters_.count(target.id) == 0) {
        return;
      }
      waiters_.at(target.id).timer = 0;
      Waiter waiter = Unpark(target.id);
      ++stats_.wait_timeouts;
      if (waiter.is_lock) {
        Defer([done = std::move(waiter.lock_done)] { done(LockResult{}); });
        ServeRwLine(*waiter.entry);
      } else {
        Answer(waiter,
               Status(Code::kDeadlineExceeded,
                      "wait_timeout_ms: no value was published within " +
                          std::to_string(waiter.acquire.wait_timeout_ms) +
                          " ms")
                   .WithReason(std::string(reason::kWaitTimeout),
                               {{std::string(kFieldKey), "wait_timeout_ms"},
                                {std::string(kLimitKey),
                                 std::to_string(
                                     waiter.acquire.wait_timeout_ms)}}));
      }
      MaybeCollect(waiter.entry);
      return;
    }
    case TimerTarget::Kind::kEntryHorizon: {
      if (Entry* entry = FindEntry(target.registry, target.key)) {
        entry->invalidation.timer = 0;
        MaybeCollect(entry);
      }
      return;
    }
    case TimerTarget::Kind::kBackoff: {
      if (Entry* entry = FindEntry(target.registry, target.key)) {
        entry->backoff_timer = 0;
        ServeDogpileLine(*entry);
        MaybeCollect(entry);
      }
      return;
    }
    case TimerTarget::Kind::kRegistryHorizon: {
      if (Registry* registry = FindRegistry(target.registry)) {
        registry->invalidation.timer = 0;
        MaybeCollectRegistry(registry);
      }
      return;
    }
  }
}

void Coordinator::Shutdown() { Shutdown(ShuttingDown()); }

void Coordinator::Shutdown(const Status& why) {
  Op op(this);
  shutting_down_ = true;
  std::vector<uint64_t> ids;
  ids.reserve(waiters_.size());
  for (const auto& [id, waiter] : waiters_) {
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  for (uint64_t id : ids) {
    Waiter waiter = Unpark(id);
    Answer(waiter, why);
  }
}

Stats Coordinator::GetStats() {
  Op op(this);
  Stats stats = stats_;
  stats.sessions = sessions_.size();
  stats.registries = registries_.size();
  stats.entries = entry_count_;
  stats.waiters = waiters_.size();
  if (near_cache_ != nullptr) {
    const NearCacheStats near = near_cache_->GetStats();
    stats.watches = near.watches;
    stats.tracked_keys = near.tracked_keys;
    stats.unacked_pushes = near.unacked_pushes;
  }
  return stats;
}

}  // namespace dogpiled::core
