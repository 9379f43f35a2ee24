#include "dogpiled/name_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

namespace dogpiled {
namespace {

struct Counted {
  explicit Counted(const std::string& id) : id(id) { ++made; }
  std::string id;
  static inline std::atomic<int> made{0};
};

TEST(NameRegistryTest, SameObjectWhileReferenced) {
  Counted::made = 0;
  NameRegistry<Counted> registry;
  std::shared_ptr<Counted> a = registry.get("users");
  std::shared_ptr<Counted> b = registry.get("users");
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(a->id, "users");
  EXPECT_EQ(Counted::made, 1);
  EXPECT_NE(registry.get("pricing").get(), a.get());
}

TEST(NameRegistryTest, ForgetsObjectsNobodyHolds) {
  Counted::made = 0;
  NameRegistry<Counted> registry;
  {
    std::shared_ptr<Counted> a = registry.get("k");
    EXPECT_EQ(registry.size(), 1u);
  }
  EXPECT_EQ(registry.size(), 0u);  // no memory for idle identifiers
  std::shared_ptr<Counted> again = registry.get("k");
  EXPECT_EQ(Counted::made, 2);  // a new lifetime, a new object
}

TEST(NameRegistryTest, CustomCreatorRunsOncePerIdentifier) {
  std::atomic<int> calls{0};
  NameRegistry<int> registry([&](const std::string& id) {
    ++calls;
    return std::make_unique<int>(static_cast<int>(id.size()));
  });
  std::shared_ptr<int> a = registry.get("four");
  std::shared_ptr<int> b = registry.get("four");
  EXPECT_EQ(*a, 4);
  EXPECT_EQ(calls, 1);
}

TEST(NameRegistryTest, ConcurrentGetsMakeOneObject) {
  Counted::made = 0;
  NameRegistry<Counted> registry;
  constexpr int kThreads = 32;
  std::vector<std::shared_ptr<Counted>> got(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      got[i] = registry.get("hot");
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(Counted::made, 1);
  for (const auto& p : got) {
    EXPECT_EQ(p.get(), got[0].get());
  }
}

TEST(NameRegistryTest, ObjectsMayOutliveTheRegistry) {
  std::shared_ptr<Counted> kept;
  {
    NameRegistry<Counted> registry;
    kept = registry.get("survivor");
  }
  EXPECT_EQ(kept->id, "survivor");  // and its release must not crash
  kept.reset();
}

TEST(NameRegistryTest, CreatorThatThrowsLeavesNoSlot) {
  NameRegistry<int> registry(
      [](const std::string&) -> std::unique_ptr<int> {
        throw std::runtime_error("nope");
      });
  EXPECT_THROW(registry.get("x"), std::runtime_error);
  EXPECT_EQ(registry.size(), 0u);
}

}  // namespace
}  // namespace dogpiled
