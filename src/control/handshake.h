// The cluster token's challenge-response on every RPC connection (docs/wire-protocol.md,
// types 13-16). A client with a token opens each connection with Hello (its nonce); the
// server answers HelloAck with its own nonce, its identity (segment name, instance id) and
// a MAC over both nonces and that identity; the client checks it (the server knows the
// token and is who the descriptor says) and proves itself with AuthProof; only then does a
// server with a token serve anything else. The token itself never crosses the wire. What
// this does not give: secrecy or integrity of the data that follows (no encryption), nor
// protection from an active man-in-the-middle relaying a whole connection.
#pragma once

#include <string>
#include <string_view>

#include "common/auth.h"
#include "control/wire.h"
#include "ferry/status.h"

namespace ferry::handshake {

static_assert(wire::kHelloNonceBytes == auth::kNonceBytes && wire::kHelloNonceBytes == auth::kMacBytes);

/// Who a server says it is; authenticated by the MAC when both sides have the token.
struct Identity {
  std::string name;
  std::string instance;
};

struct HelloAck {
  bool token = false;  // the server has a token (and the MAC below means something)
  auth::Nonce nonce{};
  auth::Mac mac{};
  Identity identity;
};

std::string encodeHelloAck(const HelloAck& ack);
/// Corrupted when the body is malformed (lengths, sizes).
Status decodeHelloAck(std::string_view body, HelloAck& out);
/// The server's MAC: over both nonces and its identity.
auth::Mac serverMac(std::string_view token, const auth::Nonce& client, const auth::Nonce& server,
                    const Identity& identity);
/// The client's answer to the server's nonce.
auth::Mac clientMac(std::string_view token, const auth::Nonce& server, const auth::Nonce& client);

/// Client side, on a fresh blocking connection before anything else is sent: proves we know
/// `token` (non-empty) and that the server does. PermissionDenied when the server has no
/// token or another one, or refuses ours. `peer` receives the server's identity.
Status client(int fd, std::string_view token, int timeout_ms, const std::string& where, Identity* peer);

/// Server side, one per connection.
class ServerState {
 public:
  ServerState(std::string_view token, const Identity* identity) : token_(token), identity_(identity) {}
  /// Whether requests other than the handshake's may be served now.
  bool admitted() const { return token_.empty() || proven_; }
  /// Answers a Hello (`body` = the client's nonce): the HelloAck body.
  Status hello(std::string_view body, std::string& reply);
  /// Checks an AuthProof; PermissionDenied when it is wrong or out of order.
  Status proof(std::string_view body);

 private:
  std::string_view token_;
  const Identity* identity_;
  bool said_hello_ = false, proven_ = false;
  auth::Nonce client_{}, server_{};
};

}  // namespace ferry::handshake
