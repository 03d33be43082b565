// A real metadata service for tests: ferry-metadata, etcd or redis-server on a free port of
// 127.0.0.1, each with its own temporary directory, stopped by pid. Kind "p2p" starts
// nothing (no store). Shared by the metadata tests and the multi-process transfer tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ferry/config.h"
#include "ferry/status.h"
#include "metadata/metadata_store.h"
#include "test_util.h"

namespace ferry::test {

/// A port nobody listens on right now.
uint16_t freePort();

/// Points an engine config at metadata URI `url` ("" or "p2p": none) under `segment_name`
/// ("" leaves the default name).
void configureMetadata(Config& c, const std::string& url, const std::string& segment_name);

class MetadataService {
 public:
  explicit MetadataService(std::string kind) : kind_(std::move(kind)) {}
  ~MetadataService() { stop(); }

  /// Starts the server on `port` (0: a free one) and waits until a lookup answers.
  Status start(uint16_t port = 0);
  /// Kills the server (SIGKILL) and reaps it. Its data is gone for etcd's next start in a
  /// fresh directory, Redis and ferry-metadata (no persistence configured).
  void stop();

  const std::string& kind() const { return kind_; }
  bool isP2p() const { return kind_ == "p2p"; }
  /// Metadata URI (`http://…/metadata`, `etcd://…`, `redis://…`); "" for p2p.
  const std::string& url() const { return url_; }
  uint16_t port() const { return port_; }

  /// A client of the service (lease/TTL `lease_ttl_s`).
  std::unique_ptr<MetadataStore> client(int64_t lease_ttl_s = 10) const;
  /// Points an engine config at `meta_url` (default: this service) under `segment_name`.
  void configure(Config& c, const std::string& segment_name, const std::string& meta_url = "") const;

 private:
  std::string kind_, url_;
  uint16_t port_ = 0;
  std::unique_ptr<TempDir> data_dir_;  // the running server's, removed at stop
  std::unique_ptr<ChildProcess> server_;
};

}  // namespace ferry::test
