#include "daemon/record_io.h"

#include <zlib.h>

#include <cstring>

namespace dogpiled::daemon {
namespace {

template <typename T>
void Put(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // x86/arm64 are little-endian
  out.append(bytes, sizeof(T));
}

void PutString(std::string& out, const std::string& s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out += s;
}

std::string Frame(const std::string& payload) {
  std::string out;
  Put<uint32_t>(out, static_cast<uint32_t>(payload.size()));
  Put<uint32_t>(out, static_cast<uint32_t>(crc32(
                         0, reinterpret_cast<const Bytef*>(payload.data()),
                         static_cast<uInt>(payload.size()))));
  return out + payload;
}

// Reads fields from one payload; any overrun marks it bad.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}
  template <typename T>
  T Get() {
    T v{};
    if (pos_ + sizeof(T) > data_.size()) {
      bad_ = true;
      return v;
    }
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string GetString() {
    const auto n = Get<uint32_t>();
    if (bad_ || pos_ + n > data_.size()) {
      bad_ = true;
      return {};
    }
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool ok() const { return !bad_ && pos_ == data_.size(); }
  bool at_end() const { return pos_ >= data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  bool bad_ = false;
};

// libraft's on-disk log takes only entries whose size is a multiple of 8, so
// entries end in up to 7 zero bytes; no record is shorter than its 8-byte
// header, so they cannot be taken for one.
bool IsPadding(std::string_view rest) {
  return rest.size() < 8 &&
         rest.find_first_not_of('\0') == std::string_view::npos;
}

void PutKind(std::string& out, core::GrantKind kind) {
  Put<uint8_t>(out, static_cast<uint8_t>(kind));
}

// False (the record is bad) for a byte that names no kind.
bool GetKind(Cursor& in, core::GrantKind& kind) {
  const auto byte = in.Get<uint8_t>();
  kind = static_cast<core::GrantKind>(byte);
  return byte >= 1 && byte <= 3;
}

// A record that only names a session.
std::string SessionRecord(RecordType type, core::SessionId id) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(type));
  Put<uint64_t>(p, id);
  return Frame(p);
}

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

std::string EncodeValue(const core::PersistedValue& v) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kValue));
  PutString(p, v.registry);
  PutString(p, v.key);
  PutString(p, v.value.str());
  Put<double>(p, v.created_time);
  Put<uint64_t>(p, v.token);
  return Frame(p);
}

std::string EncodeDrop(const std::string& registry, const std::string& key) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kDrop));
  PutString(p, registry);
  PutString(p, key);
  return Frame(p);
}

std::string EncodeInvalidation(const core::PersistedInvalidation& inv) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kInvalidation));
  PutString(p, inv.registry);
  PutString(p, inv.key);
  Put<uint8_t>(p, inv.hard ? 1 : 0);
  Put<uint64_t>(p, inv.mark);
  Put<double>(p, inv.wall);
  return Frame(p);
}

std::string EncodeSessionOpened(const core::PersistedSession& s) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kSessionOpened));
  Put<uint64_t>(p, s.id);
  Put<int64_t>(p, s.ttl_ms);
  PutString(p, s.client_name);
  PutString(p, s.client);
  PutString(p, s.owner);
  return Frame(p);
}

std::string EncodeSessionEnded(core::SessionId id) {
  return SessionRecord(RecordType::kSessionEnded, id);
}

std::string EncodeSessionWatching(core::SessionId id) {
  return SessionRecord(RecordType::kSessionWatching, id);
}

std::string EncodeGranted(const core::PersistedGrant& g) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kGranted));
  Put<uint64_t>(p, g.token);
  PutKind(p, g.kind);
  Put<uint64_t>(p, g.session);
  PutString(p, g.registry);
  PutString(p, g.key);
  Put<uint64_t>(p, g.request_id);
  Put<uint8_t>(p, g.lock_only ? 1 : 0);
  Put<int64_t>(p, g.timeout_ms);
  return Frame(p);
}

std::string EncodeReleased(const core::PersistedRelease& r) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kReleased));
  Put<uint64_t>(p, r.token);
  Put<uint8_t>(p, r.lock_only_created_time ? 1 : 0);
  Put<double>(p, r.lock_only_created_time.value_or(0));
  Put<uint8_t>(p, r.by_holder ? 1 : 0);
  return Frame(p);
}

std::string EncodeLeader(const core::PersistedMember& m) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(RecordType::kLeader));
  Put<uint64_t>(p, m.id);
  PutString(p, m.client_address);
  return Frame(p);
}

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

void ReplayRecord(const Record& r, core::Journal& to) {
  switch (r.type) {
    case RecordType::kValue:
      to.ValueStored(r.value);
      break;
    case RecordType::kDrop:
      to.ValueDropped(r.value.registry, r.value.key);
      break;
    case RecordType::kInvalidation:
      to.Invalidated(r.invalidation);
      break;
    case RecordType::kSessionOpened:
      to.SessionOpened(r.session);
      break;
    case RecordType::kSessionEnded:
      to.SessionEnded(r.session.id);
      break;
    case RecordType::kGranted:
      to.Granted(r.grant);
      break;
    case RecordType::kReleased:
      to.Released(r.release);
      break;
    case RecordType::kLeader:
      to.LeaderAnnounced(r.member);
      break;
    case RecordType::kSessionWatching:
      to.SessionWatching(r.session.id);
      break;
    case RecordType::kStamp:
    case RecordType::kHighWater:
    case RecordType::kRecentPublish:
    case RecordType::kRecentRelease:
      break;
  }
}

void RecordEncoder::ValueStored(const core::PersistedValue& value) {
  buffer_ += EncodeValue(value);
}
void RecordEncoder::ValueDropped(const std::string& registry,
                                 const std::string& key) {
  buffer_ += EncodeDrop(registry, key);
}
void RecordEncoder::Invalidated(const core::PersistedInvalidation& inv) {
  buffer_ += EncodeInvalidation(inv);
}
void RecordEncoder::SessionOpened(const core::PersistedSession& session) {
  buffer_ += EncodeSessionOpened(session);
}
void RecordEncoder::SessionEnded(core::SessionId id) {
  buffer_ += EncodeSessionEnded(id);
}
void RecordEncoder::Granted(const core::PersistedGrant& grant) {
  buffer_ += EncodeGranted(grant);
}
void RecordEncoder::Released(const core::PersistedRelease& release) {
  buffer_ += EncodeReleased(release);
}
void RecordEncoder::SessionWatching(core::SessionId id) {
  buffer_ += EncodeSessionWatching(id);
}
void RecordEncoder::LeaderAnnounced(const core::PersistedMember& member) {
  buffer_ += EncodeLeader(member);
}

void PadEntry(std::string& entry) {
  entry.append((8 - entry.size() % 8) % 8, '\0');
}

bool ApplyEntry(std::string_view entry, core::Journal& to) {
  // Decoded whole first: a state machine applies an entry entirely or not
  // at all.
  std::vector<Record> records;
  RecordReader reader(entry);
  while (!reader.at_end() && !IsPadding(entry.substr(reader.consumed()))) {
    std::optional<Record> record = reader.Next();
    if (!record) {
      return false;
    }
    records.push_back(std::move(*record));
  }
  for (const Record& record : records) {
    ReplayRecord(record, to);
  }
  return true;
}

std::optional<Record> RecordReader::DecodeAt(size_t pos, size_t& end) const {
  if (data_.size() < 8 || pos > data_.size() - 8) {
    return std::nullopt;
  }
  uint32_t length = 0;
  uint32_t crc = 0;
  std::memcpy(&length, data_.data() + pos, 4);
  std::memcpy(&crc, data_.data() + pos + 4, 4);
  if (length > data_.size() - pos - 8) {
    return std::nullopt;  // torn, or not a record start
  }
  const std::string_view payload = data_.substr(pos + 8, length);
  if (crc32(0, reinterpret_cast<const Bytef*>(payload.data()),
            static_cast<uInt>(payload.size())) != crc) {
    return std::nullopt;
  }
  Cursor in(payload);
  Record r;
  r.type = static_cast<RecordType>(in.Get<uint8_t>());
  switch (r.type) {
    case RecordType::kValue:
      r.value.registry = in.GetString();
      r.value.key = in.GetString();
      r.value.value = in.GetString();
      r.value.created_time = in.Get<double>();
      r.value.token = in.Get<uint64_t>();
      break;
    case RecordType::kDrop:
      r.value.registry = in.GetString();
      r.value.key = in.GetString();
      break;
    case RecordType::kInvalidation:
      r.invalidation.registry = in.GetString();
      r.invalidation.key = in.GetString();
      r.invalidation.hard = in.Get<uint8_t>() != 0;
      r.invalidation.mark = in.Get<uint64_t>();
      r.invalidation.wall = in.Get<double>();
      break;
    case RecordType::kSessionOpened:
      r.session.id = in.Get<uint64_t>();
      r.session.ttl_ms = in.Get<int64_t>();
      r.session.client_name = in.GetString();
      r.session.client = in.GetString();
      r.session.owner = in.GetString();
      break;
    case RecordType::kSessionEnded:
    case RecordType::kSessionWatching:
      r.session.id = in.Get<uint64_t>();
      break;
    case RecordType::kGranted: {
      r.grant.token = in.Get<uint64_t>();
      if (!GetKind(in, r.grant.kind)) {
        return std::nullopt;
      }
      r.grant.session = in.Get<uint64_t>();
      r.grant.registry = in.GetString();
      r.grant.key = in.GetString();
      r.grant.request_id = in.Get<uint64_t>();
      r.grant.lock_only = in.Get<uint8_t>() != 0;
      r.grant.timeout_ms = in.Get<int64_t>();
      break;
    }
    case RecordType::kReleased: {
      r.release.token = in.Get<uint64_t>();
      const bool stamped = in.Get<uint8_t>() != 0;
      const auto created = in.Get<double>();
      if (stamped) {
        r.release.lock_only_created_time = created;
      }
      // Absent from the records of older versions, which kept no releases
      // for retries.
      r.release.by_holder = !in.at_end() && in.Get<uint8_t>() != 0;
      break;
    }
    case RecordType::kStamp:
      r.stamp.registry = in.GetString();
      r.stamp.key = in.GetString();
      r.stamp.token = in.Get<uint64_t>();
      r.stamp.created_time = in.Get<double>();
      break;
    case RecordType::kHighWater:
      r.high_water = in.Get<uint64_t>();
      break;
    case RecordType::kLeader:
      r.member.id = in.Get<uint64_t>();
      r.member.client_address = in.GetString();
      break;
    case RecordType::kRecentPublish:
    case RecordType::kRecentRelease: {
      r.session.id = in.Get<uint64_t>();
      const auto token = in.Get<uint64_t>();
      std::string registry = in.GetString();
      std::string key = in.GetString();
      if (r.type == RecordType::kRecentPublish) {
        r.publish = {token, std::move(registry), std::move(key),
                     in.Get<uint64_t>(), in.Get<double>()};
      } else {
        r.holder_release = {token, {}, std::move(registry), std::move(key)};
        if (!GetKind(in, r.holder_release.kind)) {
          return std::nullopt;
        }
      }
      break;
    }
    default:
      return std::nullopt;
  }
  if (!in.ok()) {
    return std::nullopt;
  }
  end = pos + 8 + length;
  return r;
}

std::optional<Record> RecordReader::Next() {
  size_t end = 0;
  std::optional<Record> r = DecodeAt(pos_, end);
  if (r) {
    pos_ = end;
  }
  return r;
}

bool RecordReader::Resync() {
  size_t end = 0;
  for (size_t p = pos_ + 1; data_.size() >= 8 && p <= data_.size() - 8; ++p) {
    if (DecodeAt(p, end)) {
      pos_ = p;
      return true;
    }
  }
  return false;
}

}  // namespace dogpiled::daemon
