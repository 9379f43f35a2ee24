#include "daemon/record_io.h"

#include "daemon/record_codec.h"

namespace dogpiled::daemon {
namespace {

// A record that only names a session.
std::string SessionRecord(RecordType type, core::SessionId id) {
  std::string p;
  Put<uint8_t>(p, static_cast<uint8_t>(type));
  Put<uint64_t>(p, id);
  return Frame(p);
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
