// The C++ SDK's near-cache (docs/near-cache.md) against the real daemon:
// fresh reads from memory, coherence under concurrent Publish and
// Invalidate (a history checker), the byte bound, a watch that goes silent,
// and max_stale_on_error.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon_harness.h"
#include "dogpiled/client.h"
#include "dogpiled/dogpile.h"
#include "dogpiled/session.h"
#include "test_util.h"

namespace dogpiled {
namespace {

using std::chrono::milliseconds;
using testing::Eventually;
using testing::GetStatsOrDie;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr uint64_t kNearCacheBytes = 1 << 20;

// Forwards a loopback port to the daemon. With swallow set, the daemon's
// bytes are read and thrown away while the connection stays open: a
// half-open stream, which only silence reveals.
class SwallowingProxy {
 public:
  explicit SwallowingProxy(int target_port) : target_port_(target_port) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    bind(listener_, reinterpret_cast<sockaddr*>(&addr), len);
    listen(listener_, 16);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~SwallowingProxy() {
    shutdown(listener_, SHUT_RDWR);
    acceptor_.join();  // no new connections from here on
    close(listener_);
    for (int fd : fds_) {
      shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : threads_) {
      t.join();
    }
    for (int fd : fds_) {
      close(fd);
    }
  }
  int port() const { return port_; }
  std::atomic<bool> swallow{false};

 private:
  void Accept() {
    for (;;) {
      const int client = accept(listener_, nullptr, nullptr);
      if (client < 0) {
        return;
      }
      const int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(target_port_));
      connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      fds_.push_back(client);
      fds_.push_back(server);
      threads_.emplace_back([this, client, server] { Pump(client, server, false); });
      threads_.emplace_back([this, client, server] { Pump(server, client, true); });
    }
  }
  void Pump(int from, int to, bool from_daemon) {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(from, buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      // MSG_NOSIGNAL: a peer that went away must not SIGPIPE the test.
      if (!(from_daemon && swallow.load()) &&
          send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
        break;
      }
    }
    shutdown(from, SHUT_RDWR);
    shutdown(to, SHUT_RDWR);
  }

  const int target_port_;
  int listener_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  // Written by the acceptor only, read after it is joined.
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
};

class NearCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = testing::Daemon::Start(
        {"--watch-heartbeat-ms", std::to_string(HeartbeatMs())});
    plain_ = std::make_unique<Client>(daemon_->target());
  }

  // Short, so that the tests of a silent or half-open watch end quickly.
  virtual int64_t HeartbeatMs() const { return 100; }

  std::unique_ptr<Client> NearClient(
      uint64_t bytes = kNearCacheBytes,
      milliseconds max_stale = milliseconds(0),
      milliseconds rpc_timeout = milliseconds(10'000)) {
    ClientOptions options;
    options.target = daemon_->target();
    options.near_cache_bytes = bytes;
    options.max_stale_on_error = max_stale;
    options.rpc_timeout = rpc_timeout;
    return std::make_unique<Client>(options);
  }

  static Session Open(const Client& client) {
    StatusOr<Session> s = Session::Open(client);
    if (!s.ok()) {
      throw std::runtime_error("Session::Open: " + s.status().ToString());
    }
    return std::move(s).value();
  }

  // Waits for the session's watch to be trusted: a state of the daemon's
  // stream that no call announces.
  // Bounded generously: under TSan a reconnect takes seconds.
  static void AwaitServing(const Session& session) {
    ASSERT_TRUE(Eventually([&] { return session.near_cache_stats().serving; },
                           std::chrono::seconds(30)))
        << "the near-cache watch never came up";
  }

  static DogpileOptions Fresh(milliseconds expire = milliseconds(60'000)) {
    DogpileOptions options;
    options.expiretime = expire;
    options.wait_timeout = milliseconds(5000);
    return options;
  }

  // Makes `value` the stored value of reg/`key`, through a creator that is
  // always elected (expire < 0), so Publish is what it exercises.
  void Publish(Session& session, const std::string& key,
               const std::string& value) {
    Dogpile writer(session, "reg", key, Fresh(milliseconds(-1)));
    EXPECT_EQ(writer.acquire([&] { return value; }), value);
  }

  std::unique_ptr<testing::Daemon> daemon_;
  std::unique_ptr<Client> plain_;
};

// For tests that count the reads served from memory. A watch is dropped
// after three heartbeats of silence, and a starved process can miss three
// of 100 ms: in a fresh-container CI run (TSan beside a CPU hog) 180 of
// 1,000 reads went to the daemon while the watch was replaced.
class NearCacheSteadyTest : public NearCacheTest {
 protected:
  int64_t HeartbeatMs() const override {
    return testing::Scaled(milliseconds(1000)).count();
  }
};

TEST_F(NearCacheSteadyTest, FreshReadsAreServedFromMemory) {
  Session writer_session = Open(*plain_);
  Publish(writer_session, "k", "v1");
  auto client = NearClient();
  Session session = Open(*client);
  AwaitServing(session);
  Dogpile reader(session, "reg", "k", Fresh());
  EXPECT_EQ(reader.acquire([] { return std::string("never"); }), "v1");
  const uint64_t before = GetStatsOrDie(*plain_).acquires_fresh;
  for (int i = 0; i < 1000; ++i) {
    AcquireResult r = reader.acquire_result([] { return std::string("x"); });
    ASSERT_EQ(r.value, "v1");
    ASSERT_EQ(r.source, ValueSource::kFresh);
  }
  EXPECT_EQ(GetStatsOrDie(*plain_).acquires_fresh, before)
      << "fresh reads reached the daemon";
  EXPECT_EQ(session.near_cache_stats().entries, 1u);
}

TEST_F(NearCacheTest, InvalidateAndPublishAreSeenOnceTheyReturn) {
  auto client = NearClient();
  Session session = Open(*client);
  Session writer_session = Open(*plain_);
  Publish(writer_session, "k", "v1");
  AwaitServing(session);
  Dogpile reader(session, "reg", "k", Fresh());
  EXPECT_EQ(reader.acquire([] { return std::string("made"); }), "v1");
  EXPECT_EQ(reader.acquire([] { return std::string("made"); }), "v1");

  Publish(writer_session, "k", "v2");  // returns after the reader dropped v1
  EXPECT_EQ(reader.acquire([] { return std::string("made"); }), "v2");
  EXPECT_EQ(reader.acquire([] { return std::string("made"); }), "v2");

  ASSERT_TRUE(plain_->Invalidate("reg", "k", /*hard=*/false).ok());
  AcquireResult r = reader.acquire_result([] { return std::string("v3"); });
  EXPECT_EQ(r.value, "v3");
  EXPECT_EQ(r.source, ValueSource::kCreated);

  ASSERT_TRUE(plain_->Invalidate("reg", "", /*hard=*/true).ok());
  EXPECT_EQ(reader.acquire([] { return std::string("v4"); }), "v4");
}

TEST_F(NearCacheSteadyTest, TheByteBoundEvictsLeastRecentlyUsed) {
  Session writer_session = Open(*plain_);
  const std::string big(1000, 'x');
  for (int i = 0; i < 10; ++i) {
    Publish(writer_session, "k" + std::to_string(i), big);
  }
  constexpr uint64_t kBound = 4000;
  auto client = NearClient(kBound);
  Session session = Open(*client);
  AwaitServing(session);
  for (int i = 0; i < 10; ++i) {
    Dogpile d(session, "reg", "k" + std::to_string(i), Fresh());
    EXPECT_EQ(d.acquire([] { return std::string("never"); }), big);
    EXPECT_LE(session.near_cache_stats().bytes, kBound);
  }
  const NearCacheStats stats = session.near_cache_stats();
  EXPECT_EQ(stats.entries, 3u);  // 3 x (1000 + 2 + 3 + 160) bytes fit
  // The most recent stay; the oldest went to the daemon again.
  const uint64_t before = GetStatsOrDie(*plain_).acquires_fresh;
  Dogpile last(session, "reg", "k9", Fresh());
  last.acquire([] { return std::string("never"); });
  EXPECT_EQ(GetStatsOrDie(*plain_).acquires_fresh, before);
  Dogpile first(session, "reg", "k0", Fresh());
  first.acquire([] { return std::string("never"); });
  EXPECT_EQ(GetStatsOrDie(*plain_).acquires_fresh, before + 1);
}

TEST_F(NearCacheTest, ASilentWatchDropsEverythingAndStaleOnErrorIsOptIn) {
  Session writer_session = Open(*plain_);
  Publish(writer_session, "k", "v1");
  // Short enough that reads of a stopped daemon fail fast, long enough for
  // every other call under TSan.
  constexpr milliseconds kRpcTimeout(2000);
  auto strict = NearClient(kNearCacheBytes, milliseconds(0), kRpcTimeout);
  auto lenient = NearClient(kNearCacheBytes, milliseconds(60'000), kRpcTimeout);
  // A lease that outlives the stop, and reads that do not wait on the
  // daemon, so each failed read costs one rpc_timeout.
  SessionOptions long_lease;
  long_lease.ttl = milliseconds(60'000);
  Session strict_session = std::move(Session::Open(*strict, long_lease)).value();
  Session lenient_session =
      std::move(Session::Open(*lenient, long_lease)).value();
  AwaitServing(strict_session);
  AwaitServing(lenient_session);
  DogpileOptions no_wait = Fresh();
  no_wait.wait_timeout = milliseconds(0);
  Dogpile strict_reader(strict_session, "reg", "k", no_wait);
  Dogpile lenient_reader(lenient_session, "reg", "k", no_wait);
  EXPECT_EQ(strict_reader.acquire([] { return std::string("x"); }), "v1");
  EXPECT_EQ(lenient_reader.acquire([] { return std::string("x"); }), "v1");

  daemon_->Signal(SIGSTOP);  // no heartbeats, no answers
  // Three missed heartbeats (300 ms): nothing is served from memory.
  EXPECT_TRUE(Eventually(
      [&] {
        return !strict_session.near_cache_stats().serving &&
               strict_session.near_cache_stats().entries == 0;
      },
      std::chrono::seconds(30)));
  EXPECT_TRUE(
      Eventually([&] { return !lenient_session.near_cache_stats().serving; },
                 std::chrono::seconds(30)));
  EXPECT_THROW(strict_reader.acquire([] { return std::string("x"); }), Error);
  AcquireResult r =
      lenient_reader.acquire_result([] { return std::string("x"); });
  EXPECT_EQ(r.value, "v1");
  EXPECT_EQ(r.source, ValueSource::kStale) << "the caller must see it is stale";
  daemon_->Signal(SIGCONT);
  // Back: a new watch, and the value comes from the daemon again.
  AwaitServing(strict_session);
  EXPECT_EQ(strict_reader.acquire([] { return std::string("x"); }), "v1");
}

TEST_F(NearCacheTest, FailOpenRunsTheCreatorHereWhenTheDaemonIsUnreachable) {
  ClientOptions options;
  options.target = daemon_->target();
  options.rpc_timeout = milliseconds(2000);  // as above
  options.fail_open = true;
  Client client(options);
  SessionOptions long_lease;
  long_lease.ttl = milliseconds(60'000);
  Session session = std::move(Session::Open(client, long_lease)).value();
  DogpileOptions no_wait = Fresh();
  no_wait.wait_timeout = milliseconds(0);
  Dogpile reader(session, "reg", "k", no_wait);
  // Reachable: elected and published through the daemon, as always.
  EXPECT_EQ(reader.acquire_result([] { return std::string("v1"); }).source,
            ValueSource::kCreated);

  daemon_->Signal(SIGSTOP);
  int runs = 0;
  AcquireResult r = reader.acquire_result([&] {
    ++runs;
    return std::string("local");
  });
  EXPECT_EQ(r.value, "local");
  EXPECT_EQ(r.source, ValueSource::kCreatedOffline);
  EXPECT_EQ(runs, 1);
  daemon_->Signal(SIGCONT);
  // Nothing was stored: the daemon still serves the value published before.
  EXPECT_EQ(reader.acquire([] { return std::string("x"); }), "v1");
}

TEST_F(NearCacheTest, AHalfOpenWatchHoldsInvalidateOnlyUntilTheClientDrops) {
  Session writer_session = Open(*plain_);
  Publish(writer_session, "k", "v1");
  SwallowingProxy proxy(daemon_->port());
  ClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(proxy.port());
  options.near_cache_bytes = kNearCacheBytes;
  Client client(options);
  SessionOptions long_lease;
  long_lease.ttl = milliseconds(60'000);  // expiry cannot be what frees it
  StatusOr<Session> opened = Session::Open(client, long_lease);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Session session = std::move(opened).value();
  AwaitServing(session);
  Dogpile reader(session, "reg", "k", Fresh());
  EXPECT_EQ(reader.acquire([] { return std::string("x"); }), "v1");
  ASSERT_EQ(GetStatsOrDie(*plain_).tracked_keys, 1u);

  proxy.swallow = true;  // events and answers vanish; requests still arrive
  const SteadyTime start = std::chrono::steady_clock::now();
  ASSERT_TRUE(plain_->Invalidate("reg", "k", /*hard=*/false).ok());
  const auto waited = std::chrono::steady_clock::now() - start;
  // Three missed 100 ms heartbeats, then the KeepAlive naming no watch.
  EXPECT_LT(waited, std::chrono::seconds(10));
  EXPECT_FALSE(session.near_cache_stats().serving);
  EXPECT_EQ(session.near_cache_stats().entries, 0u);
  RecordProperty("invalidate_ms",
                 std::to_string(std::chrono::duration_cast<milliseconds>(
                                    waited).count()));
  proxy.swallow = false;
}

// --- coherence checker -------------------------------------------------------

// Every value is the number of the creation that made it, from one counter
// shared by all creators, so values are ordered by when they were made.
struct Write {
  SteadyTime returned;
  // Values made before the write began are void once it returned.
  uint64_t floor = 0;
  std::string what;
};
struct Read {
  SteadyTime began;
  uint64_t value = 0;
  ValueSource source = ValueSource::kFresh;
};

TEST_F(NearCacheTest, CoherenceCheckerNoFreshReadOfAVoidedValue) {
  constexpr int kReaders = 4;
  constexpr auto kRun = milliseconds(1500);
  constexpr size_t kMinWrites = 30;
  std::atomic<uint64_t> creations{1};
  auto create = [&] { return std::to_string(creations.fetch_add(1)); };
  {
    Session s = Open(*plain_);
    Publish(s, "k", create());
  }
  std::mutex mu;
  std::vector<Write> writes;
  std::vector<Read> reads;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> total_reads{0};

  std::vector<std::thread> threads;
  for (int i = 0; i < kReaders; ++i) {
    threads.emplace_back([&] {
      auto client = NearClient();
      Session session = Open(*client);
      Dogpile reader(session, "reg", "k", Fresh());
      std::vector<Read> mine;
      while (!stop.load()) {
        Read r;
        r.began = std::chrono::steady_clock::now();
        AcquireResult got = reader.acquire_result(create);
        r.value = std::stoull(got.value);
        r.source = got.source;
        mine.push_back(r);
      }
      total_reads += mine.size();
      std::lock_guard<std::mutex> lock(mu);
      reads.insert(reads.end(), mine.begin(), mine.end());
    });
  }
  threads.emplace_back([&] {
    Session session = Open(*plain_);
    Dogpile writer(session, "reg", "k", Fresh(milliseconds(-1)));
    // At least kRun and at least kMinWrites: a starved machine (TSan beside
    // other builds managed 9 writes in 1.5 s) takes longer, not fewer.
    const SteadyTime end = std::chrono::steady_clock::now() + kRun;
    const SteadyTime give_up = end + std::chrono::seconds(60);
    size_t done = 0;
    const auto more = [&] {
      const SteadyTime now = std::chrono::steady_clock::now();
      return now < give_up && (done < kMinWrites || now < end);
    };
    for (int n = 0; more(); ++n) {
      Write w;
      w.floor = creations.load();
      if (n % 3 == 2) {
        EXPECT_TRUE(plain_->Invalidate("reg", "k", n % 2 == 0).ok());
        w.what = "invalidate";
      } else {
        // The role is always free for an expire < 0 caller unless a
        // reader is creating after an invalidation; then it is STALE.
        AcquireResult r = writer.acquire_result(create);
        if (r.source != ValueSource::kCreated) {
          continue;
        }
        w.floor = std::stoull(r.value);
        w.what = "publish " + r.value;
      }
      w.returned = std::chrono::steady_clock::now();
      ++done;
      std::lock_guard<std::mutex> lock(mu);
      writes.push_back(w);
    }
    stop = true;
  });
  for (std::thread& t : threads) {
    t.join();
  }

  ASSERT_GE(writes.size(), kMinWrites);
  ASSERT_GT(total_reads.load(), writes.size());
  // For each read, the write with the highest floor among those that had
  // returned when it began: by return time, with a running maximum.
  std::sort(writes.begin(), writes.end(),
            [](const Write& a, const Write& b) { return a.returned < b.returned; });
  std::vector<size_t> strictest(writes.size());
  for (size_t i = 0; i < writes.size(); ++i) {
    strictest[i] = i > 0 && writes[strictest[i - 1]].floor > writes[i].floor
                       ? strictest[i - 1]
                       : i;
  }
  size_t checked = 0;
  for (const Read& r : reads) {
    auto after = std::lower_bound(
        writes.begin(), writes.end(), r.began,
        [](const Write& w, SteadyTime t) { return w.returned < t; });
    if (r.source != ValueSource::kFresh || after == writes.begin()) {
      continue;
    }
    const Write& w = writes[strictest[after - writes.begin() - 1]];
    ++checked;
    if (r.value < w.floor) {
      ADD_FAILURE() << "a read that began after \"" << w.what
                    << "\" returned saw the older value " << r.value
                    << " as FRESH";
      break;
    }
  }
  EXPECT_GT(checked, 0u);
  RecordProperty("reads", std::to_string(total_reads.load()));
  RecordProperty("writes", std::to_string(writes.size()));
}

}  // namespace
}  // namespace dogpiled
