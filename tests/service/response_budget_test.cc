// The response budget: refuses new answers past its limits, and queues the
// answers of calls that were already waiting until earlier ones are done.
#include "service/response_budget.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace dogpiled::service {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// A queued answer that records when it was sent and keeps its reservation
// until the test says the client has read it.
struct Answer {
  std::unique_ptr<Reservation> reservation = std::make_unique<Reservation>();
  bool sent = false;
};

void QueueAnswer(ResponseBudget& budget, const std::string& peer,
                 uint64_t bytes, Answer& answer) {
  answer.reservation->Queue(&budget, peer, bytes,
                            [&answer] { answer.sent = true; });
}

TEST(ResponseBudgetTest, QueuedAnswersLeaveInOrderAsEarlierOnesAreRead) {
  ResponseBudget budget(/*per_connection=*/2 * kMiB, /*total=*/0);
  std::vector<Answer> answers(5);
  for (Answer& a : answers) {
    QueueAnswer(budget, "conn-a", kMiB, a);
  }
  EXPECT_TRUE(answers[0].sent);
  EXPECT_TRUE(answers[1].sent);
  EXPECT_FALSE(answers[2].sent);
  EXPECT_TRUE(budget.Exhausted("conn-a"));
  EXPECT_FALSE(budget.Exhausted("conn-b"));

  answers[1].reservation.reset();  // read by the client
  EXPECT_TRUE(answers[2].sent);
  EXPECT_FALSE(answers[3].sent);
  answers[0].reservation.reset();
  answers[2].reservation.reset();
  EXPECT_TRUE(answers[3].sent);
  EXPECT_TRUE(answers[4].sent);
  answers[3].reservation.reset();
  answers[4].reservation.reset();
  EXPECT_FALSE(budget.Exhausted("conn-a"));
  EXPECT_TRUE(budget.Reserve("conn-a", 2 * kMiB));  // nothing left reserved
}

TEST(ResponseBudgetTest, NewAnswersAreRefusedWhileAnswersWait) {
  ResponseBudget budget(kMiB, 0);
  Answer first, queued;
  QueueAnswer(budget, "conn-a", kMiB, first);
  QueueAnswer(budget, "conn-a", kMiB, queued);
  EXPECT_FALSE(queued.sent);
  // A new call on a connection that is not reading is refused up front.
  EXPECT_TRUE(budget.Exhausted("conn-a"));
  Reservation refused;
  EXPECT_FALSE(refused.Take(&budget, "conn-a", 1));
  first.reservation.reset();
  EXPECT_TRUE(queued.sent);
}

TEST(ResponseBudgetTest, TheTotalLimitAdmitsOtherConnectionsWhenRoomIsMade) {
  ResponseBudget budget(/*per_connection=*/0, /*total=*/2 * kMiB);
  Answer a1, a2, b1;
  QueueAnswer(budget, "conn-a", kMiB, a1);
  QueueAnswer(budget, "conn-a", kMiB, a2);
  QueueAnswer(budget, "conn-b", kMiB, b1);
  EXPECT_TRUE(a1.sent && a2.sent);
  EXPECT_FALSE(b1.sent);
  a1.reservation.reset();  // room in the total: conn-b's answer goes
  EXPECT_TRUE(b1.sent);
}

TEST(ResponseBudgetTest, AnAnswerLargerThanTheLimitStillGoesAlone) {
  ResponseBudget budget(kMiB, 0);
  Answer big, next;
  QueueAnswer(budget, "conn-a", 3 * kMiB, big);
  QueueAnswer(budget, "conn-a", 1, next);
  EXPECT_TRUE(big.sent);
  EXPECT_FALSE(next.sent);
  big.reservation.reset();
  EXPECT_TRUE(next.sent);
}

}  // namespace
}  // namespace dogpiled::service
