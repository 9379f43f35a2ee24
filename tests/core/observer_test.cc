#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

struct Recorder : Observer {
  void OnSessionEnded(SessionId, const std::string& name,
                      bool expired) override {
    ended.push_back(name + (expired ? ":expired" : ":closed"));
  }
  void OnCreatorEnded(const std::string&, const std::string& key,
                      int64_t held_ms, bool published) override {
    creators.push_back(key + ":" + std::to_string(held_ms) +
                       (published ? ":published" : ":lost"));
  }
  void OnWaitEnded(int64_t waited_ms) override { waits.push_back(waited_ms); }
  std::vector<std::string> ended, creators;
  std::vector<int64_t> waits;
};

TEST_F(CoreTest, ObserverSeesDurationsAndEndings) {
  Recorder recorder;
  CoordinatorOptions options;
  options.clock = &clock_;
  options.observer = &recorder;
  int ids = 0;
  options.session_id_source = [&ids] { return uint64_t{1000} + 2 * ++ids; };
  core_ = std::make_unique<Coordinator>(options);

  auto a = core_->Open(1000, "a");
  EXPECT_EQ(a->session_id, 501u);  // from the source, shifted to 63 bits
  SessionId b = Open(60'000);
  Token t = Now(Req(a->session_id, "k", 1000)).token;
  auto waiter = Acquire(Req(b, "k", 1000, 30'000));
  Advance(250);
  ASSERT_TRUE(Publish(a->session_id, t, "v").ok());
  Token t2 = Now(Req(b, "j", 1000)).token;
  (void)t2;
  Advance(1000);  // a expires; b's role on "j" stays
  ASSERT_TRUE(core_->Close(b).ok());
  EXPECT_EQ(recorder.waits, std::vector<int64_t>{250});
  EXPECT_EQ(recorder.creators,
            (std::vector<std::string>{"k:250:published", "j:1000:lost"}));
  EXPECT_EQ(recorder.ended,
            (std::vector<std::string>{"a:expired", "test:closed"}));
}

}  // namespace
}  // namespace dogpiled::core
