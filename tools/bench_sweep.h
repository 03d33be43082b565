// ferry-bench --sweep: one measurement per protocol x block size x batch size x threads
// (page size for --workload=kv), one table with nixlbench's column names where they mean
// the same, JSON lines, and --plot FILE.png drawn by ferry-plot (matplotlib) with the
// reference series in the same picture.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>

namespace ferry::tools {

class Flags;

/// One measurement with the flags given, its JSON line into the second argument.
using Measure = std::function<int(const Flags&, nlohmann::json*)>;

/// Runs the sweep the flags describe (in loopback mode: one target child per protocol).
int runSweep(Flags& f, const char* self, const Measure& measure);

}  // namespace ferry::tools
