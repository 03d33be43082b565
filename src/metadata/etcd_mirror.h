// A local copy of every etcd key under one prefix, kept current by a watch, so that finding
// a segment by name costs a map lookup instead of a round trip through etcd's JSON gateway
// (~0.5 ms here). One thread: read the prefix (its revision R), watch from R+1, apply each
// event; a broken or canceled stream (compaction) is read again after a backoff. Only a
// current mirror answers, and only with what it holds: a miss is the caller's to read from
// etcd (a key created a moment ago), and a hit may be milliseconds old — the engine checks a
// descriptor against the peer itself and refreshes with a direct read.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "common/http.h"
#include "ferry/status.h"

namespace ferry {

/// One line of an etcd watch stream applied to `entries` (keys under `prefix` only); sets
/// `created` when it says the watch is established. False when the watch ended (canceled by
/// etcd, e.g. compacted) or the line is not what etcd sends: read everything again.
bool applyWatchLine(std::string_view line, const std::string& prefix,
                    std::unordered_map<std::string, std::string>& entries, bool& created);

class EtcdMirror {
 public:
  /// POSTs a JSON body to /v3/<path> (the store's, with its endpoint failover).
  using Post = std::function<Status(const std::string& path, const std::string& body, std::string& reply)>;
  /// Runs the watch request (/v3/watch with `body`) on `call` until it ends.
  using Watch = std::function<Status(http::StreamCall& call, const std::string& body,
                                     const std::function<bool(std::string_view)>& on_data)>;

  EtcdMirror(std::string prefix, Post post, Watch watch);
  ~EtcdMirror();  // stops the watch and its thread
  EtcdMirror(const EtcdMirror&) = delete;
  EtcdMirror& operator=(const EtcdMirror&) = delete;

  const std::string& prefix() const { return prefix_; }
  /// The value of `key` when the mirror is current and holds it.
  bool find(const std::string& key, std::string& value);
  /// Whether the watch is established on a fresh copy (tests, introspection).
  bool current();

 private:
  bool applyLine(std::string_view line);  // applyWatchLine on our map, under mu_
  void run();
  Status snapshot(int64_t& revision);  // reads the prefix into entries_
  bool onData(std::string_view data);

  const std::string prefix_;
  const Post post_;
  const Watch watch_;
  std::mutex mu_;  // a leaf: guards entries_, current_, stopping_
  std::condition_variable cv_;
  std::unordered_map<std::string, std::string> entries_;
  bool current_ = false;
  bool stopping_ = false;
  std::string partial_;  // the stream's unfinished line (run thread only)
  http::StreamCall call_;
  std::thread thread_;
};

}  // namespace ferry
