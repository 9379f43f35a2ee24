// The one mapping of core errors to gRPC statuses, and the one list of
// error reasons against the proto's ErrorReason enum.
#include "service/status_map.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/errors.h"
#include "dogpiled/v1/errors.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace dogpiled::service {
namespace {

google::rpc::Status Details(const grpc::Status& status) {
  google::rpc::Status details;
  EXPECT_TRUE(details.ParseFromString(status.error_details()));
  return details;
}

TEST(ErrorReasonsTest, CoreListAndProtoEnumAgree) {
  std::set<std::string> core(core::reason::kAll.begin(),
                             core::reason::kAll.end());
  EXPECT_EQ(core.size(), core::reason::kAll.size()) << "a reason twice";
  std::set<std::string> proto;
  const auto* descriptor = v1::ErrorReason_descriptor();
  for (int i = 0; i < descriptor->value_count(); ++i) {
    if (descriptor->value(i)->number() != v1::ERROR_REASON_UNSPECIFIED) {
      proto.insert(descriptor->value(i)->name());
    }
  }
  EXPECT_EQ(core, proto);
}

TEST(StatusMapTest, OkHasNoDetails) {
  EXPECT_TRUE(ToGrpc(core::Status()).ok());
  EXPECT_TRUE(ToGrpc(core::Status()).error_details().empty());
}

TEST(StatusMapTest, ReasonAndMetadataBecomeErrorInfo) {
  const grpc::Status s = ToGrpc(core::FieldInvalid("key", "too long", 1024));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "key: too long");
  const google::rpc::Status details = Details(s);
  EXPECT_EQ(details.code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(details.message(), "key: too long");
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.domain(), "dogpiled");
  EXPECT_EQ(info.reason(), "FIELD_INVALID");
  EXPECT_EQ(info.metadata().at("field"), "key");
  EXPECT_EQ(info.metadata().at("limit"), "1024");
}

TEST(StatusMapTest, CapsAlsoCarryRetryInfo) {
  const grpc::Status s = ToGrpc(core::CapReached(
      core::reason::kWaitersPerKey, "key", 7, "key: the cap of 7"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const google::rpc::Status details = Details(s);
  ASSERT_EQ(details.details_size(), 2);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "WAITERS_PER_KEY");
  EXPECT_EQ(info.metadata().at("limit"), "7");
  // The retry delay travels as RetryInfo, not as metadata.
  EXPECT_EQ(info.metadata().count(std::string(core::kRetryDelayMs)), 0u);
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(details.details(1).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds() * 1000 +
                retry.retry_delay().nanos() / 1000000,
            core::kCapRetryDelayMs);
}

TEST(StatusMapTest, AnUnclassifiedErrorStillHasAnErrorInfo) {
  const grpc::Status s = ToGrpc(core::Unavailable("something new"));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(Details(s).details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "ERROR_REASON_UNSPECIFIED");
}

}  // namespace
}  // namespace dogpiled::service
