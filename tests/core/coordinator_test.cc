#include <gtest/gtest.h>
#include "core/coordinator.h"
TEST(Placeholder, Builds) { EXPECT_TRUE(true); }
