// Publication of this engine's descriptor to the metadata store, by a single writer thread
// that always puts the latest snapshot: versions in the store only move forward, and
// concurrent registrations coalesce into one put. The same thread keeps the entry alive
// (etcd lease, Redis TTL) and, after a failed put or a lost lease, republishes with backoff
// until the store is back.
//
// Lock order: mu_ is a leaf and never held across store I/O.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "metadata/metadata_store.h"
#include "model/segment_descriptor.h"

namespace ferry {

class Publisher {
 public:
  using Describe = std::function<SegmentDescriptor()>;
  /// Publishes describe() under `key` of `store`.
  Publisher(MetadataStore& store, std::string key, std::string segment_name, Describe describe)
      : store_(store), key_(std::move(key)), name_(std::move(segment_name)), describe_(std::move(describe)) {}
  ~Publisher() { stop(); }

  /// Puts the first descriptor (failing fast and clearly when the store is unreachable),
  /// then starts the writer.
  Status start();
  /// Our registrations are at `version` now: returns once the store holds a descriptor at
  /// least that new, or the writer's attempt failed (it then retries on its own).
  void publish(uint64_t version);
  /// Stops the writer and removes our entry (a clean exit leaves none).
  void stop();

 private:
  void loop();

  MetadataStore& store_;
  const std::string key_, name_;
  const Describe describe_;
  std::mutex mu_;  // guards the fields below; a leaf, never held across store I/O
  std::condition_variable cv_;  // the writer: work or stop; publishers: an attempt ended
  uint64_t wanted_ = 0;         // newest version asked for
  uint64_t attempted_ = 0;      // newest version the writer tried to put
  bool retry_ = false;          // the last put or keep-alive failed
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ferry
