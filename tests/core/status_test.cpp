#include "ferry/status.h"

#include <gtest/gtest.h>

namespace ferry {

TEST(Status, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::OK().ok());
}

TEST(Status, FactoriesCarryCodeAndMessage) {
  Status s = Status::InvalidArgument("bad length");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ(s.message(), "bad length");
  EXPECT_EQ(s.ToString(), "InvalidArgument: bad length");
  EXPECT_EQ(Status::InternalError("x").code(), Status::Code::kInternalError);
  EXPECT_EQ(Status::NotImplemented("x").ToString(), "NotImplemented: x");
  EXPECT_TRUE(Status::Timeout("t").IsTimeout());
  EXPECT_TRUE(Status::NotFound("n").IsNotFound());
  EXPECT_TRUE(Status::Unavailable("u").IsUnavailable());
}

TEST(Status, EveryCodeHasAName) {
  for (int c = 0; c <= static_cast<int>(Status::Code::kInternalError); ++c)
    EXPECT_STRNE(Status::CodeName(static_cast<Status::Code>(c)), "Unknown") << c;
}

TEST(Status, ReturnIfErrorPropagates) {
  auto f = [](bool fail) -> Status {
    FERRY_RETURN_IF_ERROR(fail ? Status::Busy("b") : Status::OK());
    return Status::NotFound("reached end");
  };
  EXPECT_EQ(f(true).code(), Status::Code::kBusy);
  EXPECT_EQ(f(false).code(), Status::Code::kNotFound);
}

}  // namespace ferry
