// A replicated member's snapshot: its whole committed state as records
// (record_io.h), and back.
#include "daemon/record_io.h"
#include "daemon/record_codec.h"

namespace dogpiled::daemon {
namespace {

// A session's recent call, for a snapshot (a new leader answers its
// retries): the session, token and key both kinds begin with; the rest
// follows. A publish's value_hash is std::hash of the value, the same on
// every member built alike.
template <typename Call>
std::string RecentCall(RecordType type, core::SessionId session,
                       const Call& call) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(type));
  Put<uint64_t>(p, session);
  Put<uint64_t>(p, call.token);
  PutString(p, call.registry);
  PutString(p, call.key);
  return p;
}

}  // namespace

std::string EncodeState(const core::PersistedState& state) {
  std::string out;
  for (const auto& s : state.sessions) {
    out += EncodeSessionOpened(s);
    if (s.watching) {
      out += EncodeSessionWatching(s.id);
    }
    for (const auto& call : s.recent_publishes) {
      std::string p = RecentCall(RecordType::kRecentPublish, s.id, call);
      Put<uint64_t>(p, call.value_hash);
      Put<double>(p, call.created_time);
      out += Frame(p);
    }
    for (const auto& call : s.recent_releases) {
      std::string p = RecentCall(RecordType::kRecentRelease, s.id, call);
      PutKind(p, call.kind);
      out += Frame(p);
    }
  }
  for (const auto& g : state.grants) {
    out += EncodeGranted(g);
  }
  for (const auto& v : state.values) {
    out += EncodeValue(v);
  }
  for (const auto& i : state.invalidations) {
    out += EncodeInvalidation(i);
  }
  for (const auto& s : state.stamps) {
    std::string p;
    Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kStamp));
    PutString(p, s.registry);
    PutString(p, s.key);
    Put<uint64_t>(p, s.token);
    Put<double>(p, s.created_time);
    out += Frame(p);
  }
  // The leader last: DecodeState takes the last one for it.
  const core::PersistedMember* leader = nullptr;
  for (const auto& m : state.members) {
    if (m.id == state.leader) {
      leader = &m;
    } else {
      out += EncodeLeader(m);
    }
  }
  if (leader != nullptr) {
    out += EncodeLeader(*leader);
  }
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kHighWater));
  Put<uint64_t>(p, state.high_water);
  return out + Frame(p);
}

std::optional<core::PersistedState> DecodeState(std::string_view data) {
  core::PersistedState state;
  RecordReader reader(data);
  while (!reader.at_end() && !IsPadding(data.substr(reader.consumed()))) {
    std::optional<Record> r = reader.Next();
    if (!r) {
      return std::nullopt;
    }
    switch (r->type) {
      case RecordType::kSessionOpened:
        state.sessions.push_back(std::move(r->session));
        break;
      case RecordType::kSessionWatching:
      case RecordType::kRecentPublish:
      case RecordType::kRecentRelease: {
        // Each follows its own session's record.
        if (state.sessions.empty() ||
            state.sessions.back().id != r->session.id) {
          return std::nullopt;
        }
        core::PersistedSession& session = state.sessions.back();
        if (r->type == RecordType::kSessionWatching) {
          session.watching = true;
        } else if (r->type == RecordType::kRecentPublish) {
          session.recent_publishes.push_back(std::move(r->publish));
        } else {
          session.recent_releases.push_back(std::move(r->holder_release));
        }
        break;
      }
      case RecordType::kGranted:
        state.grants.push_back(std::move(r->grant));
        break;
      case RecordType::kValue:
        state.values.push_back(std::move(r->value));
        break;
      case RecordType::kInvalidation:
        state.invalidations.push_back(std::move(r->invalidation));
        break;
      case RecordType::kStamp:
        state.stamps.push_back(std::move(r->stamp));
        break;
      case RecordType::kHighWater:
        state.high_water = r->high_water;
        break;
      case RecordType::kLeader:  // the members in order, the leader last
        state.leader = r->member.id;
        state.members.push_back(std::move(r->member));
        break;
      default:
        return std::nullopt;  // changes, not state
    }
  }
  return state;
}

}  // namespace dogpiled::daemon
