// The transports this build has, in preference order: a new transport is a folder under
// src/transport/ plus one line in registry.cpp (docs/adding-a-transport.md). Core creates
// transports only through createTransports() and never names one.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "common/options.h"
#include "ferry/config.h"
#include "transport/transport.h"

namespace ferry {

struct TransportInfo {
  const char* name;
  // Preference group: lower groups go first (0 our own segment, 1 same machine, 2 network).
  // Within a group the selector orders by each transport's cost estimate for the request.
  int group;
  // Declares its options (under transports/<name>; enable and fault/* are added for it).
  void (*declare_options)(OptionTable& table);
  std::unique_ptr<Transport> (*make)();
};

/// Every transport of this build, in preference order.
const std::vector<TransportInfo>& transportRegistry();
/// The entry called `name`, or null.
const TransportInfo* findTransport(std::string_view name);
/// Declares every transport's options, each under transports/<name>.
void declareTransportOptions(OptionTable& table);
/// Every transport enabled in config, in preference order; a transport with fault/*
/// settings comes wrapped in the fault injector (transport/fault).
std::vector<std::unique_ptr<Transport>> createTransports(const Config& config);

}  // namespace ferry
