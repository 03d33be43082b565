// The cluster token and the few primitives built on it: HMAC-SHA256 (OpenSSL's libcrypto,
// the maintained implementation every Debian machine has), random nonces, constant-time
// comparison. The token never leaves the process: peers prove they know it by answering a
// challenge (control/handshake.h, HTTP request signatures), never by sending it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "ferry/status.h"

namespace ferry::auth {

constexpr size_t kNonceBytes = 32;
constexpr size_t kMacBytes = 32;
constexpr size_t kMinTokenBytes = 16;    // shorter ones fall to an offline guess of a recorded exchange
constexpr size_t kMaxTokenBytes = 4096;

using Nonce = std::array<uint8_t, kNonceBytes>;
using Mac = std::array<uint8_t, kMacBytes>;

/// InvalidArgument unless `token` is empty (no token) or kMinTokenBytes..kMaxTokenBytes.
Status checkToken(std::string_view token, std::string_view source);
/// Reads a token file: it must be a regular file owned by this user and readable by no
/// one else (mode 0600 or 0400), as ssh demands of private keys. Trailing newlines are
/// dropped.
Status readTokenFile(const std::string& path, std::string& token);

/// The token in force: `token` (config auth/token), else the file `token_file`
/// (auth/token_file), else FERRY_AUTH_TOKEN from the environment; "" for none. Setting both
/// of the first two is an error, as is a token outside the allowed sizes.
Status resolveToken(const std::string& token, const std::string& token_file, std::string& out);

/// HMAC-SHA256 of the concatenated parts under `key`.
Mac hmac(std::string_view key, std::initializer_list<std::string_view> parts);
/// SHA-256 of `data`, as 64 lower-case hex digits.
std::string sha256Hex(std::string_view data);
/// Bytes from the kernel's CSPRNG (getrandom); never fails short.
void randomBytes(uint8_t* out, size_t n);
Nonce randomNonce();
/// Compares in time independent of where the inputs differ.
bool equal(const uint8_t* a, const uint8_t* b, size_t n);
std::string hex(const uint8_t* p, size_t n);
/// Parses exactly 2*n hex digits into out[0..n).
bool unhex(std::string_view s, uint8_t* out, size_t n);
inline std::string_view view(const Nonce& n) { return {reinterpret_cast<const char*>(n.data()), n.size()}; }

}  // namespace ferry::auth
