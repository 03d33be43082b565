#include "core/metrics.h"

#include <prometheus/metric_family.h>

#include <iterator>
#include <limits>
#include <string>

#include "common/log.h"

namespace ferry {

void Metrics::enable() {
  if (!counters_) counters_ = std::make_unique<TransferCounters>();
}

void Metrics::start(const std::string& name, std::chrono::seconds interval) {
  enable();
  thread_ = std::thread([this, name, interval] { loop(name, interval); });
}

void Metrics::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

uint64_t Metrics::bytesMoved() const {
  if (!counters_) return 0;
  uint64_t total = 0;
  for (const auto& by_op : counters_->bytes)
    for (const auto& b : by_op) total += b.load(std::memory_order_relaxed);
  return total;
}

void Metrics::loop(std::string name, std::chrono::seconds interval) {
  uint64_t last = 0;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval, [&] { return stopping_; })) {
    uint64_t now = bytesMoved();
    double mbps = static_cast<double>(now - last) / 1e6 / static_cast<double>(interval.count());
    const uint64_t mismatches = checksumMismatchCount();
    FERRY_LOG(INFO) << "metrics '" << name << "': " << mbps << " MB/s over the last " << interval.count()
                    << " s, " << now << " bytes in total"
                    << (mismatches ? ", " + std::to_string(mismatches) + " checksum mismatches" : std::string());
    last = now;
  }
}

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

const char* const kOps[] = {"read", "write"};
const char* const kStates[] = {"initial", "pending", "invalid", "canceled", "completed", "timeout", "failed"};
const char* const kCodes[] = {"ok",          "invalid_argument", "not_found",   "already_exists", "permission_denied",
                              "out_of_range", "not_supported",    "not_implemented", "unavailable", "timeout",
                              "busy",        "canceled",          "corrupted",   "internal_error"};
const char* const kSizeClasses[] = {"4KiB", "64KiB", "1MiB", "16MiB", "larger"};
const char* const kStages[] = {"queued", "on_the_wire", "awaiting_ack"};
const char* const kDowngrades[] = {"failed_over", "refused_at_submit", "unusable_here"};
static_assert(std::size(kStates) == TransferCounters::kStates);
static_assert(std::size(kCodes) == TransferCounters::kCodes);
static_assert(std::size(kSizeClasses) == TransferCounters::kSizeClasses);
static_assert(std::size(kStages) == TransferCounters::kStages);
static_assert(std::size(kDowngrades) == TransferCounters::kDowngradeKinds);

// One family being filled: every series gets the engine label first.
class FamilyBuilder {
 public:
  FamilyBuilder(std::vector<MetricFamily>& out, const std::string& engine, const char* name, const char* help,
                MetricType type)
      : out_(out), index_(out.size()), engine_(engine) {
    out.push_back({name, help, type, {}});
  }
  void value(Labels labels, double v) {
    ClientMetric& m = add(std::move(labels));
    if (out_[index_].type == MetricType::Counter)
      m.counter.value = v;
    else
      m.gauge.value = v;
  }
  void histogram(Labels labels, const LatencyHistogram& h) {
    ClientMetric& m = add(std::move(labels));
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.buckets.size(); ++i) {
      cumulative += h.buckets[i].load(std::memory_order_relaxed);
      const double bound = i < LatencyHistogram::kBoundsNs.size() ? LatencyHistogram::kBoundsNs[i] / 1e9
                                                                  : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back({cumulative, bound});
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(h.sum_ns.load(std::memory_order_relaxed)) / 1e9;
  }

 private:
  ClientMetric& add(Labels labels) {
    ClientMetric m;
    m.label.push_back({"engine", engine_});
    for (auto& l : labels) m.label.push_back(std::move(l));
    out_[index_].metric.push_back(std::move(m));
    return out_[index_].metric.back();
  }
  std::vector<MetricFamily>& out_;  // by index: later families may move it
  const size_t index_;
  const std::string& engine_;
};

double load(const std::atomic<uint64_t>& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); }

}  // namespace

void Metrics::collect(const std::string& engine, const EngineGauges& g, std::vector<MetricFamily>& out) const {
  const size_t transports = std::min(g.transports.size(), TransferCounters::kMaxTransports);
  if (const TransferCounters* c = counters_.get()) {
    FamilyBuilder bytes(out, engine, "ferry_transferred_bytes_total", "Bytes moved by completed slices",
                        MetricType::Counter);
    for (size_t t = 0; t < transports; ++t)
      for (size_t op = 0; op < TransferCounters::kOps; ++op)
        bytes.value({{"transport", g.transports[t]}, {"op", kOps[op]}}, load(c->bytes[t][op]));
    FamilyBuilder slices(out, engine, "ferry_slices_total", "Slices completed", MetricType::Counter);
    for (size_t t = 0; t < transports; ++t)
      for (size_t op = 0; op < TransferCounters::kOps; ++op)
        slices.value({{"transport", g.transports[t]}, {"op", kOps[op]}}, load(c->slices[t][op]));
    FamilyBuilder tasks(out, engine, "ferry_tasks_total", "Tasks (requests) settled, by final state",
                        MetricType::Counter);
    for (size_t op = 0; op < TransferCounters::kOps; ++op)
      for (size_t s : {COMPLETED, FAILED, TIMEOUT, CANCELED, INVALID})
        tasks.value({{"op", kOps[op]}, {"state", kStates[s]}}, load(c->tasks[op][s]));
    FamilyBuilder failures(out, engine, "ferry_failures_total",
                           "Slices (and tasks that never reached a transport) that failed, by status",
                           MetricType::Counter);
    for (size_t code = 1; code < TransferCounters::kCodes; ++code)
      failures.value({{"code", kCodes[code]}}, load(c->failed_slices[code]));
    FamilyBuilder downgrades(out, engine, "ferry_downgrades_total",
                             "Slices that went over a slower transport than the first candidate, and why "
                             "(failed_over and refused_at_submit are the failovers)",
                             MetricType::Counter);
    for (size_t why = 0; why < TransferCounters::kDowngradeKinds; ++why)
      for (size_t from = 0; from < transports; ++from)
        for (size_t to = 0; to < transports; ++to)
          if (const uint64_t n = c->downgrades[why][from][to].load(std::memory_order_relaxed); n)
            downgrades.value({{"from", g.transports[from]}, {"to", g.transports[to]}, {"reason", kDowngrades[why]}},
                             static_cast<double>(n));
    FamilyBuilder latency(out, engine, "ferry_task_latency_seconds",
                          "Submit to completion of completed tasks, by operation and size (up to the class's bound)",
                          MetricType::Histogram);
    for (size_t op = 0; op < TransferCounters::kOps; ++op)
      for (size_t sc = 0; sc < TransferCounters::kSizeClasses; ++sc)
        latency.histogram({{"op", kOps[op]}, {"size", kSizeClasses[sc]}}, c->task_latency[op][sc]);
    FamilyBuilder stages(out, engine, "ferry_slice_stage_seconds",
                         "Time of completed slices in each stage: queued (submit to start), on the wire "
                         "(start to the bytes leaving, or to completion), awaiting the peer's ack",
                         MetricType::Histogram);
    for (size_t st = 0; st < TransferCounters::kStages; ++st) stages.histogram({{"stage", kStages[st]}}, c->stages[st]);
  }
  FamilyBuilder mismatches(out, engine, "ferry_checksum_mismatches_total",
                           "Slices whose bytes failed their end-to-end checksum", MetricType::Counter);
  mismatches.value({}, static_cast<double>(checksumMismatchCount()));
  FamilyBuilder refreshes(out, engine, "ferry_descriptor_refreshes_total",
                          "Peer descriptors re-read (registrations changed, the peer moved or restarted)",
                          MetricType::Counter);
  refreshes.value({}, static_cast<double>(g.descriptor_refreshes));
  FamilyBuilder notes(out, engine, "ferry_notifications_total", "Notifications, by direction and outcome",
                      MetricType::Counter);
  notes.value({{"direction", "received"}, {"outcome", "delivered"}}, static_cast<double>(g.notifications_received));
  notes.value({{"direction", "received"}, {"outcome", "refused"}}, static_cast<double>(g.notifications_refused));
  notes.value({{"direction", "sent"}, {"outcome", "delivered"}}, static_cast<double>(g.notifications_sent));
  notes.value({{"direction", "sent"}, {"outcome", "failed"}}, static_cast<double>(g.notifications_failed));
  FamilyBuilder pending(out, engine, "ferry_notification_pending_bytes",
                        "Notification names and messages unread here or queued to go out", MetricType::Gauge);
  pending.value({}, static_cast<double>(g.notification_pending_bytes));
  FamilyBuilder segments(out, engine, "ferry_open_segments", "Segments opened by this engine", MetricType::Gauge);
  segments.value({}, static_cast<double>(g.open_segments));
  FamilyBuilder states(out, engine, "ferry_peer_states",
                       "Per-peer state each transport holds (endpoints: connections, mappings, open files)",
                       MetricType::Gauge);
  for (size_t t = 0; t < g.transports.size() && t < g.peer_states.size(); ++t)
    states.value({{"transport", g.transports[t]}}, static_cast<double>(g.peer_states[t]));
  FamilyBuilder conns(out, engine, "ferry_connections", "Connections each transport holds open to peers",
                      MetricType::Gauge);
  for (size_t t = 0; t < g.transports.size() && t < g.connections.size(); ++t)
    conns.value({{"transport", g.transports[t]}}, static_cast<double>(g.connections[t]));
  FamilyBuilder rpc(out, engine, "ferry_rpc_connections", "Inbound connections to this engine's RPC server",
                    MetricType::Gauge);
  rpc.value({}, static_cast<double>(g.rpc_connections));
}

}  // namespace ferry
