#include "metadata_service.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "common/net.h"

namespace ferry::test {

uint16_t freePort() {
  int fd;
  uint16_t port = 0;
  if (!net::listenTcp("127.0.0.1", 0, fd, port).ok()) return 0;
  ::close(fd);
  return port;
}


Status MetadataService::start(uint16_t port) {
  if (isP2p()) return Status::OK();
  if (port == 0) port = freePort();
  std::string ps = std::to_string(port);
  // A fresh directory per start, removed at stop: etcd preallocates a 64 MB WAL in it, and
  // leaving them behind once filled the disk.
  data_dir_ = std::make_unique<TempDir>();
  const std::string& dir = data_dir_->path();
  if (dir.empty()) return Status::Unavailable("cannot create a data directory for " + kind_);
  std::vector<std::string> argv;
  if (kind_ == "http") {
    argv = {binPath("ferry-metadata"), "--host=127.0.0.1", "--port=" + ps};
    url_ = "http://127.0.0.1:" + ps + "/metadata";
  } else if (kind_ == "etcd") {
    std::string peer = "http://127.0.0.1:" + std::to_string(freePort());
    std::string client = "http://127.0.0.1:" + ps;
    argv = {"/usr/bin/etcd", "--name=t", "--data-dir=" + dir, "--listen-client-urls=" + client,
            "--advertise-client-urls=" + client, "--listen-peer-urls=" + peer,
            "--initial-advertise-peer-urls=" + peer, "--initial-cluster=t=" + peer,
            "--log-level=error"};
    url_ = "etcd://127.0.0.1:" + ps;
  } else if (kind_ == "redis") {
    argv = {"/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", ps, "--save", "",
            "--appendonly", "no", "--dir", dir, "--loglevel", "warning"};
    url_ = "redis://127.0.0.1:" + ps;
  } else {
    return Status::InvalidArgument("unknown metadata service kind '" + kind_ + "'");
  }
  server_ = std::make_unique<ChildProcess>();
  if (!server_->start(argv)) return Status::Unavailable("cannot start " + argv[0]);
  port_ = port;
  // Ready when a lookup answers (NotFound is an answer).
  auto probe = client();
  if (!probe) return Status::InternalError("cannot create a client for " + url_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  std::string v;
  Status st;
  while (std::chrono::steady_clock::now() < deadline) {
    st = probe->get("ferry/probe", v);
    if (st.ok() || st.IsNotFound()) return Status::OK();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Unavailable(kind_ + " did not come up on port " + ps + ": " + st.ToString());
}

void MetadataService::stop() {
  if (!server_) return;
  server_->signal(SIGKILL);
  server_->wait();
  server_.reset();
  data_dir_.reset();
}

std::unique_ptr<MetadataStore> MetadataService::client(int64_t lease_ttl_s) const {
  Config c;
  std::string type, servers;
  parseMetadataUri(url_, type, servers);
  c.set("metadata/type", type);
  c.set("metadata/servers", servers);
  c.set<int64_t>("connect_timeout_ms", 1000);
  c.set<int64_t>("metadata/lease_ttl_s", lease_ttl_s);
  std::unique_ptr<MetadataStore> out;
  if (!createMetadataStore(c, out).ok()) return nullptr;
  return out;
}

void configureMetadata(Config& c, const std::string& url, const std::string& segment_name) {
  if (!url.empty() && url != "p2p") {
    std::string type, servers;
    parseMetadataUri(url, type, servers);
    c.set("metadata/type", type);
    c.set("metadata/servers", servers);
  }
  if (!segment_name.empty()) c.set("local_segment_name", segment_name);
  c.set<int64_t>("connect_timeout_ms", 1000);
}

void MetadataService::configure(Config& c, const std::string& segment_name,
                                const std::string& meta_url) const {
  configureMetadata(c, meta_url.empty() ? url_ : meta_url, segment_name);
}

}  // namespace ferry::test
