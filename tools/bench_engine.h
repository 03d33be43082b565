// ferry-bench's engine side (tools/ferry_bench.cpp keeps the initiator's measurement): the
// engine config from the flags, the benchmark buffers in host or GPU memory, the target
// mode, and the loopback mode that runs a target child process for the initiator.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ferry/config.h"
#include "ferry/transfer_engine.h"

namespace ferry::tools {

class Flags;

/// The engine's config: environment, then the flags (metadata, bind address, polling,
/// connections, slice size, copy threads, file backend). `server_name`: host[:port] to bind.
std::shared_ptr<Config> makeConfig(const Flags& f, const std::string& server_name);
/// A "cuda..." location.
bool isGpu(const std::string& location);
/// The benchmark pattern into `p`, at `location` of `engine` (GPU memory through the driver).
Status fillBuffer(TransferEngine& engine, uint8_t* p, size_t len, uint64_t seed, const std::string& location);
/// A host copy of [p, +len) (host or GPU memory of `engine`); empty on failure.
std::vector<uint8_t> hostCopy(TransferEngine& engine, const uint8_t* p, size_t len);
/// --mode=target: serves a buffer until SIGINT/SIGTERM (or stdin closes, in loopback).
int runTarget(const Flags& f);
/// --mode=loopback: starts `self` as a target child on 127.0.0.1, runs `run_initiator`
/// against it, stops it.
int runLoopback(Flags& f, const char* self, const std::function<int(Flags&)>& run_initiator);

}  // namespace ferry::tools
