#include "common/base64.h"

#include <gtest/gtest.h>

namespace ferry {

TEST(Base64, RoundTripsEveryLength) {
  std::string data;
  for (int n = 0; n < 70; ++n) {
    std::string out;
    ASSERT_TRUE(base64Decode(base64Encode(data), out));
    EXPECT_EQ(out, data);
    data.push_back(static_cast<char>(n * 37));
  }
  EXPECT_EQ(base64Encode("Ferry"), "RmVycnk=");
}

TEST(Base64, RejectsGarbage) {
  std::string out;
  EXPECT_FALSE(base64Decode("abc", out));
  EXPECT_FALSE(base64Decode("ab!d", out));
  EXPECT_FALSE(base64Decode("a===", out));
  EXPECT_FALSE(base64Decode("ab=c", out));
}

}  // namespace ferry
