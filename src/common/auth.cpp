#include "common/auth.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/environment.h"

namespace ferry::auth {

Status checkToken(std::string_view token, std::string_view source) {
  if (token.empty()) return Status::OK();
  if (token.size() < kMinTokenBytes || token.size() > kMaxTokenBytes)
    return Status::InvalidArgument("cluster token from " + std::string(source) + " must be " +
                                   std::to_string(kMinTokenBytes) + ".." + std::to_string(kMaxTokenBytes) +
                                   " bytes, got " + std::to_string(token.size()));
  return Status::OK();
}

Status readTokenFile(const std::string& path, std::string& token) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::InvalidArgument("cannot open token file '" + path + "': " + strerror(errno));
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { ::close(*f); });
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return Status::InvalidArgument("token file '" + path + "' is not a regular file");
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
    return Status::PermissionDenied("token file '" + path + "' must be owned by this user and readable by no one "
                                    "else (chmod 600)");
  if (st.st_size > static_cast<off_t>(kMaxTokenBytes + 2))
    return Status::InvalidArgument("token file '" + path + "' is larger than a token");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return Status::InvalidArgument("token file '" + path + "' is empty");
  FERRY_RETURN_IF_ERROR(checkToken(text, "file '" + path + "'"));
  token = std::move(text);
  return Status::OK();
}

Status resolveToken(const std::string& token, const std::string& token_file, std::string& out) {
  if (!token.empty() && !token_file.empty())
    return Status::InvalidArgument("set auth/token or auth/token_file, not both");
  if (!token_file.empty()) return readTokenFile(token_file, out);
  if (!token.empty()) {
    FERRY_RETURN_IF_ERROR(checkToken(token, "auth/token"));
    out = token;
    return Status::OK();
  }
  const char* from_env = env::value("FERRY_AUTH_TOKEN");
  out = from_env ? from_env : "";
  return checkToken(out, "FERRY_AUTH_TOKEN");
}

Mac hmac(std::string_view key, std::initializer_list<std::string_view> parts) {
  // Fetched once: the lookup through OpenSSL's provider tables costs more than the MAC.
  static EVP_MAC* const kHmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  Mac out{};
  size_t len = 0;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  EVP_MAC_CTX* ctx = kHmac ? EVP_MAC_CTX_new(kHmac) : nullptr;
  bool ok = ctx && EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params);
  for (std::string_view p : parts)
    ok = ok && EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(p.data()), p.size());
  ok = ok && EVP_MAC_final(ctx, out.data(), &len, out.size()) && len == out.size();
  EVP_MAC_CTX_free(ctx);
  if (!ok) std::abort();  // libcrypto without HMAC-SHA256: nothing here can be authenticated
  return out;
}

std::string sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr)) std::abort();
  return hex(md, len);
}

void randomBytes(uint8_t* out, size_t n) {
  while (n > 0) {
    ssize_t r = ::getrandom(out, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      // No getrandom (very old kernel, seccomp): the same pool through the device.
      int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
      r = fd >= 0 ? ::read(fd, out, n) : -1;
      if (fd >= 0) ::close(fd);
      if (r <= 0) std::abort();  // no randomness: a nonce we cannot trust is worse than no start
    }
    out += r;
    n -= static_cast<size_t>(r);
  }
}

Nonce randomNonce() {
  Nonce n;
  randomBytes(n.data(), n.size());
  return n;
}

bool equal(const uint8_t* a, const uint8_t* b, size_t n) { return CRYPTO_memcmp(a, b, n) == 0; }

std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}

bool unhex(std::string_view s, uint8_t* out, size_t n) {
  if (s.size() != 2 * n) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < n; ++i) {
    int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace ferry::auth
