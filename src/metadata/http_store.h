// MetadataStore over the HTTP metadata protocol: GET/PUT/DELETE <base>?key=K with opaque
// values — what ferry-metadata and Mooncake's HTTP metadata servers speak.
#pragma once

#include "metadata/metadata_store.h"

namespace ferry {

class HttpStore : public MetadataStore {
 public:
  /// url: "http://host:port/path". With a token every request is signed with it.
  static Status create(const std::string& url, int timeout_ms, const std::string& token,
                       std::unique_ptr<MetadataStore>& out);
  Status get(const std::string& key, std::string& value) override;
  Status put(const std::string& key, const std::string& value) override;
  Status remove(const std::string& key) override;
  std::string describe() const override { return url_; }

 private:
  Status request(const std::string& method, const std::string& key, const std::string& body,
                 std::string* reply);
  std::string url_, host_, path_;
  uint16_t port_ = 0;
  int timeout_ms_ = 3000;
  std::string token_;
};

}  // namespace ferry
