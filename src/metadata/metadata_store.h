// Where engines publish and find segment descriptors when not p2p. One interface; the
// engine never knows which store it talks to.
#pragma once

#include <memory>
#include <string>

#include "common/options.h"
#include "ferry/config.h"
#include "ferry/status.h"

namespace ferry {

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;
  /// NotFound when the key is absent; Unavailable when the store cannot be reached.
  virtual Status get(const std::string& key, std::string& value) = 0;
  /// get() for finding a segment: a store may answer from a local copy it keeps current by
  /// watching (milliseconds behind; the engine checks what it finds against the peer, and
  /// refreshes with get()). What the copy lacks is read from the store.
  virtual Status lookup(const std::string& key, std::string& value) { return get(key, value); }
  virtual Status put(const std::string& key, const std::string& value) = 0;
  /// OK also when the key was already absent.
  virtual Status remove(const std::string& key) = 0;
  /// "http://host:port/metadata", for messages.
  virtual std::string describe() const = 0;
  /// Keeps what we published alive (etcd lease, Redis TTL) so that a crashed engine's
  /// entries vanish on their own. NotFound: it was lost (expired), publish again.
  virtual Status keepAlive() { return Status::OK(); }
  /// How often keepAlive() must run; 0 when the store needs no keep-alive.
  virtual int keepAliveIntervalMs() const { return 0; }
};

/// Declares metadata/* (type, servers, cluster, lease, Redis credentials).
void declareMetadataOptions(OptionTable& table);
/// The store for config `metadata/type` + `metadata/servers`; `out` stays null for p2p.
/// An unknown type is InvalidArgument.
Status createMetadataStore(const Config& config, std::unique_ptr<MetadataStore>& out);

/// Splits a metadata connection string into config metadata/type + metadata/servers:
/// "P2PHANDSHAKE"/"p2p"/"" -> p2p; "http://h:p/path" -> http; "etcd://h:p[,h:p]" -> etcd;
/// "redis://[user:pass@]h:p[/db]" -> redis; a bare "h:p" -> etcd (the classic default).
void parseMetadataUri(const std::string& uri, std::string& type, std::string& servers);

/// Key of a segment's descriptor: "ferry/<cluster>/segments/<name>".
std::string segmentKey(const std::string& cluster, const std::string& segment_name);

}  // namespace ferry
