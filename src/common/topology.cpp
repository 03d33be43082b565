#include "common/topology.h"

#include "common/environment.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace ferry {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string readFirstLine(const fs::path& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  return s;
}

int numaNodeOf(const fs::path& device_dir) {
  std::string s = readFirstLine(device_dir / "numa_node");
  if (s.empty()) return -1;
  try {
    return std::stoi(s);
  } catch (...) {
    return -1;
  }
}

std::set<std::string> splitFilter(const std::string& filter) {
  std::set<std::string> out;
  std::stringstream ss(filter);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.insert(item);
  return out;
}

json numaNodes() {
  json nodes = json::array();
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/sys/devices/system/node", ec)) {
    std::string name = e.path().filename();
    if (name.rfind("node", 0) != 0 || name.size() < 5 || !isdigit(name[4])) continue;
    nodes.push_back({{"id", std::stoi(name.substr(4))}, {"cpus", readFirstLine(e.path() / "cpulist")}});
  }
  std::sort(nodes.begin(), nodes.end(), [](const json& a, const json& b) { return a["id"] < b["id"]; });
  return nodes;
}

json nics(const std::set<std::string>& filter) {
  json out = json::array();
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK)) continue;
    if (!filter.empty() && !filter.count(i->ifa_name)) continue;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, ip, sizeof ip);
    out.push_back({{"name", i->ifa_name},
                   {"ipv4", ip},
                   {"up", (i->ifa_flags & IFF_UP) != 0},
                   {"numa_node", numaNodeOf(fs::path("/sys/class/net") / i->ifa_name / "device")}});
  }
  freeifaddrs(ifs);
  return out;
}

json rdmaDevices(const std::set<std::string>& filter) {
  json out = json::array();
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/sys/class/infiniband", ec)) {
    std::string name = e.path().filename();
    if (!filter.empty() && !filter.count(name)) continue;
    int ports = 0;
    for (auto& p : fs::directory_iterator(e.path() / "ports", ec)) {
      (void)p;
      ++ports;
    }
    out.push_back({{"name", name}, {"ports", ports}, {"numa_node", numaNodeOf(e.path() / "device")}});
  }
  return out;
}

json gpus() {
  // NVIDIA's driver lists each GPU here; no CUDA runtime is needed to see them.
  json out = json::array();
  std::error_code ec;
  int id = 0;
  std::vector<std::string> buses;
  for (auto& e : fs::directory_iterator("/proc/driver/nvidia/gpus", ec)) buses.push_back(e.path().filename());
  std::sort(buses.begin(), buses.end());
  for (auto& bus : buses) {
    std::string lower = bus;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    out.push_back({{"id", id++}, {"pci_bus", bus}, {"numa_node", numaNodeOf(fs::path("/sys/bus/pci/devices") / lower)}});
  }
  return out;
}

}  // namespace

Status localTopologyJson(const std::string& device_filter, std::string& out) {
  if (const char* custom = env::value("MC_CUSTOM_TOPO_JSON")) {
    std::ifstream f(custom);
    if (!f) return Status::NotFound(std::string("MC_CUSTOM_TOPO_JSON: cannot open '") + custom + "'");
    std::stringstream ss;
    ss << f.rdbuf();
    json j = json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return Status::InvalidArgument(std::string("MC_CUSTOM_TOPO_JSON: '") + custom +
                                     "' is not a JSON object");
    out = j.dump();
    return Status::OK();
  }
  auto filter = splitFilter(device_filter);
  json j;
  j["cpus"] = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  j["numa_nodes"] = numaNodes();
  j["nics"] = nics(filter);
  j["rdma_devices"] = rdmaDevices(filter);
  j["gpus"] = gpus();
  out = j.dump();
  return Status::OK();
}

}  // namespace ferry
