// The SDK's side of request_id: Acquire is sent with a request_id, and a
// call that meets UNAVAILABLE is sent again unchanged (same request_id),
// a bounded number of times. Until the daemon honours request_id this runs
// against a fake daemon: a generic gRPC service that answers Open, fails
// the first Acquires with UNAVAILABLE, and records the request bytes.
// (Generic, because generated dogpiled.v1 code in this binary would clash
// with the copy inside the SDK's library in protobuf's global pool.) The
// fake also grants a lock and answers its Unlocks as scripted, so an
// Unlock whose answer was lost can be retried into its own release.
#include <gtest/gtest.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "dogpiled/client.h"
#include "dogpiled/dogpile.h"
#include "dogpiled/rwmutex.h"
#include "dogpiled/session.h"

namespace dogpiled {
namespace {

// Wire bytes of the two answers the fake gives (hand-written: this binary
// has no generated dogpiled.v1 code, see above).
// OpenResponse{session_id: 7, ttl_ms: 60000}
const std::string kOpenResponse("\x08\x07\x10\xe0\xd4\x03", 6);
// AcquireResponse{outcome: OUTCOME_FRESH, has_value: true, value: "v"}
const std::string kFreshResponse("\x08\x01\x10\x01\x1a\x01v", 7);
// LockResponse{acquired: true, token: 5}
const std::string kLockResponse("\x08\x01\x10\x05", 4);

// A length-delimited protobuf field, by hand as above.
std::string Field(int number, const std::string& bytes) {
  std::string out(1, static_cast<char>(number << 3 | 2));
  size_t size = bytes.size();
  do {
    const char low = static_cast<char>(size & 0x7f);
    size >>= 7;
    out += size != 0 ? static_cast<char>(low | 0x80) : low;
  } while (size != 0);
  return out + bytes;
}

// A refusal as the daemon sends it: its google.rpc.Status{code, details:
// [ErrorInfo{reason, domain, metadata}]} in grpc-status-details-bin.
grpc::Status Refusal(grpc::StatusCode code, const std::string& reason,
                     const std::map<std::string, std::string>& metadata) {
  std::string info = Field(1, reason) + Field(2, "dogpiled");
  for (const auto& [key, value] : metadata) {
    info += Field(3, Field(1, key) + Field(2, value));
  }
  const std::string details =
      std::string{'\x08', static_cast<char>(code)} +
      Field(3, Field(1, "type.googleapis.com/google.rpc.ErrorInfo") +
                   Field(2, info));
  return grpc::Status(code, reason, details);
}

class FakeDaemon final : public grpc::CallbackGenericService {
 public:
  // Unlocks get `unlock_answers` in turn, then OK.
  explicit FakeDaemon(int failures,
                      std::deque<grpc::Status> unlock_answers = {})
      : failures_(failures), unlock_answers_(std::move(unlock_answers)) {}

  std::vector<std::string> acquires() {
    std::lock_guard<std::mutex> lock(mu_);
    return acquires_;
  }
  std::vector<std::string> unlocks() {
    std::lock_guard<std::mutex> lock(mu_);
    return unlocks_;
  }

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* ctx) override {
    return new Call(this, ctx->method());
  }

 private:
  // One unary call seen as a stream: read the request, answer, finish.
  class Call final : public grpc::ServerGenericBidiReactor {
   public:
    Call(FakeDaemon* fake, std::string method)
        : fake_(fake), method_(std::move(method)) {
      if (method_ == "/dogpiled.v1.Sessions/KeepAlive") {
        // Renewals are not needed here: the fake's TTL outlasts the test.
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "fake"));
        return;
      }
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
        return;
      }
      std::string answer;
      if (method_ == "/dogpiled.v1.Sessions/Open") {
        answer = kOpenResponse;
      } else if (method_ == "/dogpiled.v1.Dogpile/Acquire") {
        if (!fake_->RecordAcquire(Bytes(request_))) {
          Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "dropped"));
          return;
        }
        answer = kFreshResponse;
      } else if (method_ == "/dogpiled.v1.RWMutex/Lock") {
        answer = kLockResponse;
      } else if (method_ == "/dogpiled.v1.RWMutex/Unlock") {
        const grpc::Status status = fake_->RecordUnlock(Bytes(request_));
        if (!status.ok()) {
          Finish(status);
          return;
        }
      } else if (method_ != "/dogpiled.v1.Sessions/Close") {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, method_));
        return;
      }
      grpc::Slice slice(answer);
      response_ = grpc::ByteBuffer(&slice, 1);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    static std::string Bytes(const grpc::ByteBuffer& buffer) {
      std::vector<grpc::Slice> slices;
      std::string out;
      if (buffer.Dump(&slices).ok()) {
        for (const grpc::Slice& s : slices) {
          out.append(reinterpret_cast<const char*>(s.begin()), s.size());
        }
      }
      return out;
    }

    FakeDaemon* const fake_;
    const std::string method_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer response_;
  };

  // Records an Acquire; false while it should still fail.
  bool RecordAcquire(std::string bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    acquires_.push_back(std::move(bytes));
    return static_cast<int>(acquires_.size()) > failures_;
  }

  // Records an Unlock; its scripted answer.
  grpc::Status RecordUnlock(std::string bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    unlocks_.push_back(std::move(bytes));
    if (unlock_answers_.empty()) {
      return grpc::Status::OK;
    }
    grpc::Status answer = unlock_answers_.front();
    unlock_answers_.pop_front();
    return answer;
  }

  const int failures_;
  std::mutex mu_;
  std::vector<std::string> acquires_;        // guarded by mu_
  std::deque<grpc::Status> unlock_answers_;  // guarded by mu_
  std::vector<std::string> unlocks_;         // guarded by mu_
};

class RetryTest : public ::testing::Test {
 protected:
  void Serve(int failures, std::deque<grpc::Status> unlock_answers = {}) {
    fake_ = std::make_unique<FakeDaemon>(failures, std::move(unlock_answers));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterCallbackGenericService(fake_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    client_ = std::make_unique<Client>("127.0.0.1:" + std::to_string(port));
  }
  void TearDown() override {
    client_.reset();
    if (server_) {
      server_->Shutdown();
    }
  }

  std::unique_ptr<FakeDaemon> fake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(RetryTest, UnavailableIsRetriedWithTheSameRequestId) {
  Serve(/*failures=*/2);
  {
    Session session = Session::Open(*client_).value();
    Dogpile dogpile(session, "r", "k");
    EXPECT_EQ(dogpile.acquire([] { return std::string("unused"); }), "v");
    EXPECT_EQ(dogpile.acquire([] { return std::string("unused"); }), "v");
  }
  const std::vector<std::string> seen = fake_->acquires();
  ASSERT_EQ(seen.size(), 4u);  // two failures, then two logical calls
  // The retries resent the first call byte for byte: same request_id.
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_EQ(seen[1], seen[2]);
  // A new call is a new request_id (nothing else differs between them).
  EXPECT_NE(seen[2], seen[3]);
  // AcquireRequest.request_id is field 10, a varint: tag byte 0x50.
  EXPECT_NE(seen[3].find('\x50'), std::string::npos);
}

TEST_F(RetryTest, RetriesAreBounded) {
  Serve(/*failures=*/1000);
  Session session = Session::Open(*client_).value();
  Dogpile dogpile(session, "r", "k");
  try {
    dogpile.acquire([] { return std::string("unused"); });
    FAIL() << "acquire succeeded against a daemon that always drops it";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), StatusCode::kUnavailable);
  }
  EXPECT_EQ(fake_->acquires().size(), 4u);
}

// The answer to an Unlock was lost (here: the member stopped leading as it
// answered), so the SDK sends it again, unchanged; the retry meets the
// release its first attempt made, which the daemon refuses NOT_HOLDER
// marked "released". The lock is released, as the caller asked: OK.
TEST_F(RetryTest, AnUnlockRetriedAfterALostAnswerReturnsOk) {
  Serve(/*failures=*/0,
        {Refusal(grpc::StatusCode::UNAVAILABLE, "NOT_LEADER", {}),
         Refusal(grpc::StatusCode::FAILED_PRECONDITION, "NOT_HOLDER",
                 {{"field", "token"}, {"token", "5"}, {"released", "true"}})});
  Session session = Session::Open(*client_).value();
  ReadWriteMutex mutex(session, "r", "k");
  ASSERT_TRUE(mutex.acquire_write_lock(false));
  const Status released = mutex.release_write_lock();
  EXPECT_TRUE(released.ok()) << released.ToString();
  const std::vector<std::string> seen = fake_->unlocks();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], seen[1]);
}

// Any other NOT_HOLDER still says the lock was lost.
TEST_F(RetryTest, AnUnlockOfALostLockIsStillRefused) {
  Serve(/*failures=*/0,
        {Refusal(grpc::StatusCode::FAILED_PRECONDITION, "NOT_HOLDER",
                 {{"field", "token"}, {"token", "5"}})});
  Session session = Session::Open(*client_).value();
  ReadWriteMutex mutex(session, "r", "k");
  ASSERT_TRUE(mutex.acquire_write_lock(false));
  const Status released = mutex.release_write_lock();
  EXPECT_EQ(released.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(released.reason(), "NOT_HOLDER");
  EXPECT_EQ(fake_->unlocks().size(), 1u);
}

}  // namespace
}  // namespace dogpiled
