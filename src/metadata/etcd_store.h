// MetadataStore over etcd v3 through its HTTP/JSON gateway (/v3/kv/*, /v3/lease/*): no gRPC
// stack to build, and etcd 3.4 (Debian's) serves it on the client port. Our keys hang on a
// lease we keep alive, so a crashed engine's entries expire after lease_ttl_s. No lock is
// held across a request: a lookup on the submit path never queues behind a keep-alive.
// Replies are parsed without exceptions; anything unexpected is Corrupted with the text.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "metadata/etcd_mirror.h"
#include "metadata/metadata_store.h"

namespace ferry {

class EtcdStore : public MetadataStore {
 public:
  /// endpoints: "host:port[,host:port...]" (tried in turn).
  /// `mirror`: lookups answered from a watched local copy of the looked-up key's prefix.
  static Status create(const std::string& endpoints, int timeout_ms, int lease_ttl_s, bool mirror,
                       std::unique_ptr<MetadataStore>& out);
  ~EtcdStore() override;
  Status get(const std::string& key, std::string& value) override;
  /// From the mirror of the first looked-up key's prefix (started then) when it holds the
  /// key and is current; else get().
  Status lookup(const std::string& key, std::string& value) override;
  /// Whether the mirror is current, and how many lookups it answered (tests, introspection).
  bool mirrorCurrent();
  uint64_t mirrorHits() const { return mirror_hits_.load(std::memory_order_relaxed); }
  Status put(const std::string& key, const std::string& value) override;
  Status remove(const std::string& key) override;
  std::string describe() const override { return "etcd://" + endpoints_text_; }
  Status keepAlive() override;
  int keepAliveIntervalMs() const override { return lease_ttl_s_ * 1000 / 3; }

 private:
  // POSTs a JSON body to /v3/<path> on the first endpoint that answers.
  Status post(const std::string& path, const std::string& body, std::string& reply);
  Status grantLease(int64_t& id);
  // Puts `key` on the current lease (granting one if there is none).
  Status putOnLease(const std::string& key, const std::string& value, std::string& reply);

  std::vector<std::pair<std::string, uint16_t>> endpoints_;
  std::string endpoints_text_;
  int timeout_ms_ = 3000;
  int lease_ttl_s_ = 10;
  std::atomic<size_t> preferred_{0};  // the endpoint that answered last
  std::atomic<int64_t> lease_{0};     // 0: none yet (or lost)
  // Serializes lease grants only (one writer: the engine's publisher), so two puts do not
  // each grant one. Held across the grant request; lookups never take it.
  std::mutex grant_mu_;
  bool mirror_enabled_ = true;
  std::once_flag mirror_once_;
  std::unique_ptr<EtcdMirror> mirror_;  // last: its thread uses the members above
  // mirror_ once made, for readers that must not make it (mirrorCurrent): mirror_ itself is
  // written inside call_once, which only lookup()'s callers synchronize with.
  std::atomic<EtcdMirror*> mirror_made_{nullptr};
  std::atomic<uint64_t> mirror_hits_{0};
};

}  // namespace ferry
