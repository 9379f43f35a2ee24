// The C++ SDK's view of a group's daemons (client/src/members.h) with a
// fake resolver: a group given as one DNS name (a Kubernetes headless
// service) finds members that came back on new addresses, without waiting
// for a follower to name them.
#include "src/members.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dogpiled::internal {
namespace {

const Status kDown(StatusCode::kUnavailable, "connection refused");

struct FakeDns {
  std::vector<std::vector<std::string>> answers;
  int calls = 0;
  Resolver resolver() {
    return [this](const std::string& host, const std::string& port) {
      EXPECT_EQ(host, "dogpiled-peers");
      EXPECT_EQ(port, "7420");
      const size_t i = std::min<size_t>(calls++, answers.size() - 1);
      return answers[i];
    };
  }
};

ClientOptions Target(const std::string& target) {
  ClientOptions options;
  options.target = target;
  return options;
}

TEST(MembersTest, AGroupNameIsResolvedAgainOnceEveryMemberFailed) {
  FakeDns dns{{{"10.0.0.1:7420", "10.0.0.2:7420"},
               {"10.0.0.2:7420", "10.0.0.3:7420"}}};
  Members members(Target("dogpiled-peers:7420"), dns.resolver());
  ASSERT_TRUE(members.grouped());
  ASSERT_EQ(dns.calls, 1);
  EXPECT_EQ(members.Current().address, "10.0.0.1:7420");
  EXPECT_FALSE(members.NoteFailure(members.Current(), kDown));
  EXPECT_EQ(members.Current().address, "10.0.0.2:7420");
  // The round is over: the name is asked again, and its new address tried
  // at once.
  EXPECT_TRUE(members.NoteFailure(members.Current(), kDown));
  EXPECT_EQ(dns.calls, 2);
  EXPECT_EQ(members.Current().address, "10.0.0.3:7420");
  // Not again within kResolveEvery, however fast the rounds fail.
  EXPECT_FALSE(members.NoteFailure(members.Current(), kDown));
  EXPECT_FALSE(members.NoteFailure(members.Current(), kDown));
  EXPECT_FALSE(members.NoteFailure(members.Current(), kDown));
  EXPECT_EQ(dns.calls, 2);
}

TEST(MembersTest, AListOrAFollowersRefusalResolvesNothing) {
  FakeDns dns{{{"10.0.0.9:7420", "10.0.0.8:7420"}}};
  Members list(Target("10.0.0.1:7420,10.0.0.2:7420"), dns.resolver());
  for (int i = 0; i < 4; ++i) {
    list.NoteFailure(list.Current(), kDown);
  }
  EXPECT_EQ(dns.calls, 0);

  Members named(Target("dogpiled-peers:7420"), dns.resolver());
  const Status refused(StatusCode::kUnavailable, "not the leader", "NOT_LEADER",
                       {{"leader", "10.0.0.8:7420"}});
  EXPECT_TRUE(named.NoteFailure(named.Current(), refused));
  EXPECT_EQ(named.Current().address, "10.0.0.8:7420");
  EXPECT_EQ(dns.calls, 1);  // only the first, when it was made
}

}  // namespace
}  // namespace dogpiled::internal
