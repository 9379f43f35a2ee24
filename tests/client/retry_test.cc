// The SDK's side of request_id: Acquire is sent with a request_id, and a
// call that meets UNAVAILABLE is sent again unchanged (same request_id),
// a bounded number of times. Until the daemon honours request_id this runs
// against a fake daemon: a generic gRPC service that answers Open, fails
// the first Acquires with UNAVAILABLE, and records the request bytes.
// (Generic, because generated dogpiled.v1 code in this binary would clash
// with the copy inside the SDK's library in protobuf's global pool.)
#include <gtest/gtest.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dogpiled/client.h"
#include "dogpiled/dogpile.h"
#include "dogpiled/session.h"

namespace dogpiled {
namespace {

// Wire bytes of the two answers the fake gives (hand-written: this binary
// has no generated dogpiled.v1 code, see above).
// OpenResponse{session_id: 7, ttl_ms: 60000}
const std::string kOpenResponse("\x08\x07\x10\xe0\xd4\x03", 6);
// AcquireResponse{outcome: OUTCOME_FRESH, has_value: true, value: "v"}
const std::string kFreshResponse("\x08\x01\x10\x01\x1a\x01v", 7);

class FakeDaemon final : public grpc::CallbackGenericService {
 public:
  explicit FakeDaemon(int failures) : failures_(failures) {}

  std::vector<std::string> acquires() {
    std::lock_guard<std::mutex> lock(mu_);
    return acquires_;
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

  const int failures_;
  std::mutex mu_;
  std::vector<std::string> acquires_;  // guarded by mu_
};

class RetryTest : public ::testing::Test {
 protected:
  void Serve(int failures) {
    fake_ = std::make_unique<FakeDaemon>(failures);
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

}  // namespace
}  // namespace dogpiled
