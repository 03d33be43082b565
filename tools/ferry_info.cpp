// ferry-info: inspect Ferry's configuration and segments.
//   ferry-info --config            every config key with its default (JSON)
//   ferry-info --effective         the config this environment produces (FERRY_CONF, MC_*)
//   ferry-info --segment=HOST:PORT a peer's descriptor: buffers, transports, identity
//   ferry-info --probe=HOST:PORT   exit 0 when the peer's RPC server answers
#include <cstdio>
#include <iostream>

#include "core/descriptor.h"
#include "core/engine.h"
#include "ferry/config.h"
#include "ferry/transfer_engine.h"
#include "flags.h"

using namespace ferry;

int main(int argc, char** argv) {
  tools::Flags f;
  f.define("config", "false", "print the default configuration", true);
  f.define("effective", "false", "print the configuration from this environment", true);
  f.define("segment", "", "print the descriptor of the segment HOST:PORT");
  f.define("probe", "", "probe the RPC server of HOST:PORT");
  std::string err;
  if (!f.parse(argc, argv, err) || argc < 2) {
    std::cerr << (err.empty() ? "" : "ferry-info: " + err + "\n") << f.usage("ferry-info");
    return 2;
  }
  if (f.boolean("config")) std::cout << Config::defaultsJson() << "\n";
  if (f.boolean("effective")) {
    Config c;
    Status st = c.loadFromEnv();
    if (!st.ok()) {
      std::cerr << st.ToString() << "\n";
      return 1;
    }
    std::cout << c.dump() << "\n";
  }
  if (!f.str("segment").empty() || !f.str("probe").empty()) {
    auto c = std::make_shared<Config>();
    c->set("rpc/bind_address", "127.0.0.1");
    c->set("log_level", "warn");
    TransferEngine engine(c);
    if (!engine.available()) {
      std::cerr << engine.initStatus().ToString() << "\n";
      return 1;
    }
    if (!f.str("probe").empty()) {
      Status st = engine.impl()->probe(f.str("probe"));
      std::cout << f.str("probe") << ": " << st.ToString() << "\n";
      if (!st.ok()) return 1;
    }
    if (!f.str("segment").empty()) {
      SegmentID id;
      Status st = engine.openSegment(id, f.str("segment"));
      SegmentInfo info;
      if (st.ok()) st = engine.getSegmentInfo(id, info);
      if (!st.ok()) {
        std::cerr << st.ToString() << "\n";
        return 1;
      }
      std::cout << "segment " << f.str("segment") << " (transport "
                << engine.impl()->transportName(id) << "): " << info.buffers.size()
                << " buffer(s)\n";
      for (auto& b : info.buffers)
        std::printf("  base 0x%llx  length %llu  %s\n", static_cast<unsigned long long>(b.base),
                    static_cast<unsigned long long>(b.length), b.location.c_str());
    }
  }
  return 0;
}
