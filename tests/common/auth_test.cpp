// The cluster token: where it comes from, what a token file must look like, and the
// primitives the handshake and HTTP signatures are built on.
#include "common/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "common/http.h"
#include "ferry/config.h"
#include "test_util.h"

namespace ferry {

TEST(Auth, TokenFileMustBeReadableByItsOwnerOnly) {
  test::TempDir dir;
  const std::string path = dir.file("token");
  std::ofstream(path) << "a token of twenty-four b\n";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  std::string token;
  EXPECT_TRUE(auth::resolveToken("", path, token).IsPermissionDenied());
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(auth::resolveToken("", path, token).ok());
  EXPECT_EQ(token, "a token of twenty-four b");  // the newline is not part of it
  EXPECT_TRUE(auth::resolveToken("a token of twenty-four b", path, token).IsInvalidArgument());  // both
  EXPECT_TRUE(auth::resolveToken("short", "", token).IsInvalidArgument());
  EXPECT_TRUE(auth::resolveToken("", dir.file("missing"), token).IsInvalidArgument());
}

TEST(Auth, HmacMatchesRfc4231) {
  // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
  auth::Mac mac = auth::hmac("Jefe", {"what do ya want ", "for nothing?"});
  EXPECT_EQ(auth::hex(mac.data(), mac.size()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(auth::sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  uint8_t back[3];
  EXPECT_TRUE(auth::unhex("0aFf10", back, 3));
  EXPECT_EQ(back[1], 0xff);
  EXPECT_FALSE(auth::unhex("0g", back, 1));
  EXPECT_NE(auth::randomNonce(), auth::randomNonce());
}

TEST(Auth, SecretsAreRedactedWhenPrinted) {
  Config c;
  c.set("auth/token", "do not print me, ever, please");
  c.set("metadata/redis/password", "nor me");
  std::string text = c.dump();
  EXPECT_EQ(text.find("do not print me"), std::string::npos) << text;
  EXPECT_EQ(text.find("nor me"), std::string::npos) << text;
  EXPECT_NE(text.find("<redacted>"), std::string::npos);
}

// A signed request verifies once; any change to it, a stale clock or a second use does not.
TEST(Auth, HttpSignatures) {
  const std::string token = "the cluster's token, 31 bytes!!";
  http::Request req;
  req.method = "PUT";
  req.target = "/metadata?key=a";
  req.body = "value";
  req.headers["authorization"] = http::signature(token, req.method, req.target, req.body, 1000);
  std::set<std::string> seen;
  auto remember = [&](const std::string& n) { return !seen.insert(n).second; };
  std::string why;
  EXPECT_EQ(http::verifySignature(req, token, 1010, 120, remember, why), 0) << why;
  EXPECT_EQ(http::verifySignature(req, token, 1010, 120, remember, why), 403);  // replayed
  EXPECT_EQ(why, "replayed request");
  http::Request changed = req;
  changed.body = "other";
  EXPECT_EQ(http::verifySignature(changed, token, 1010, 120, remember, why), 403);
  changed = req;
  changed.target = "/metadata?key=b";
  EXPECT_EQ(http::verifySignature(changed, token, 1010, 120, remember, why), 403);
  EXPECT_EQ(http::verifySignature(req, token, 2000, 120, remember, why), 403);  // stale
  EXPECT_EQ(http::verifySignature(req, "another token, long enough", 1010, 120, remember, why), 403);
  req.headers.erase("authorization");
  EXPECT_EQ(http::verifySignature(req, token, 1010, 120, remember, why), 401);
}

// What the fuzz target feeds the request-head parser, spot-checked.
TEST(Http, RequestHeadParser) {
  http::Request req;
  size_t len = 0;
  int status = 0;
  std::string why;
  ASSERT_TRUE(http::parseRequestHead("GET /metadata?key=a%2Fb&x= HTTP/1.1\r\nContent-Length: 12\r\nX: y", req, len,
                                     status, why));
  EXPECT_EQ(req.path, "/metadata");
  EXPECT_EQ(req.query["key"], "a/b");
  EXPECT_EQ(len, 12u);
  EXPECT_EQ(req.headers["x"], "y");
  for (const char* bad : {"GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", "GET /a HTTP/1.1\r\nContent-Length: -1",
                          "GET /a HTTP/1.1\r\nContent-Length: 99999999999999999999", "GET a HTTP/1.1", "GET /a",
                          "GET /a HTTP/1.1 extra", "GET /a?k=%1 HTTP/1.1", "GET /a?%zz=1 HTTP/1.1"}) {
    EXPECT_FALSE(http::parseRequestHead(bad, req, len, status, why)) << bad;
    EXPECT_EQ(status, 400) << bad;
  }
  EXPECT_TRUE(http::parseRequestHead("PUT /a HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3", req, len, status, why));
  EXPECT_FALSE(http::parseRequestHead("PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked", req, len, status, why));
  EXPECT_EQ(status, 501);
}

}  // namespace ferry
