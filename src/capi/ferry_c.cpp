// The C API (ferry/ferry.h) over the public C++ API: each call checks its pointers, converts
// C values into the C++ types (refusing values outside their enums), forwards, and turns the
// Status into a code plus this thread's last-error message. Nothing is thrown across.
#include "ferry/ferry.h"

#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include "capi/capi_util.h"
#include "common/log.h"
#include "ferry/config.h"
#include "ferry/engine_ext.h"
#include "ferry/log.h"

namespace ferry::capi {
thread_local std::string t_last_error;
}  // namespace ferry::capi

using ferry::Status;
using ferry::TransferEngine;
using namespace ferry::capi;

namespace {

// A typed config lookup that tells "absent" and "not convertible" apart from a value.
template <typename T>
int configGet(const char* call, const ferry_config* config, const char* key, T* out) noexcept {
  return guarded(call, [&]() -> Status {
    FERRY_RETURN_IF_ERROR(need(config, "config"));
    FERRY_RETURN_IF_ERROR(need(key, "key"));
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    if (!config->config.has(key)) return Status::NotFound(std::string("config key '") + key + "' is not set");
    // Config::get answers its default when the value does not convert: ask with two.
    T a = config->config.get<T>(key, T(0)), b = config->config.get<T>(key, T(1));
    if (!(a == b)) return Status::InvalidArgument(std::string("config key '") + key + "' does not hold that type");
    *out = a;
    return Status::OK();
  });
}

template <typename T>
int configSet(const char* call, ferry_config* config, const char* key, const T& value) noexcept {
  return guarded(call, [&]() -> Status {
    FERRY_RETURN_IF_ERROR(need(config, "config"));
    FERRY_RETURN_IF_ERROR(need(key, "key"));
    config->config.set<T>(key, value);
    return Status::OK();
  });
}

template <typename Make>
int startEngine(const char* call, ferry_engine** out, Make&& make) noexcept {
  return guarded(call, [&]() -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    *out = nullptr;
    std::unique_ptr<ferry_engine> engine = make();
    if (!engine->engine.available()) return engine->engine.initStatus();
    *out = engine.release();
    return Status::OK();
  });
}

}  // namespace

extern "C" {

// ---- library ----
const char* ferry_version(void) { return FERRY_VERSION_STRING; }
const char* ferry_last_error(void) { return t_last_error.c_str(); }

const char* ferry_status_name(int status) {
  if (status > 0 || status < FERRY_E_INTERNAL) return "Unknown";
  return Status::CodeName(static_cast<Status::Code>(-status));
}

const char* ferry_transfer_state_name(int state) {
  if (state < FERRY_TRANSFER_INITIAL || state > FERRY_TRANSFER_FAILED) return "UNKNOWN";
  return ferry::ToString(static_cast<ferry::TransferStatusEnum>(state));
}

void ferry_free(void* block) { std::free(block); }

int ferry_set_log_level(int level) {
  return guarded(__func__, [&]() -> Status {
    if (level < FERRY_LOG_DEBUG || level > FERRY_LOG_OFF) {
      return Status::InvalidArgument("log level " + std::to_string(level) + " is not a FERRY_LOG_*");
    }
    ferry::setLogLevel(static_cast<ferry::LogLevel>(level));
    return Status::OK();
  });
}

int ferry_log_level(void) { return static_cast<int>(ferry::logLevel()); }

void ferry_set_log_sink(ferry_log_sink sink, void* user_data) {
  if (!sink) {
    ferry::setLogSink(nullptr);
    return;
  }
  ferry::setLogSink([sink, user_data](const ferry::LogRecord& r) {
    sink(user_data, static_cast<int>(r.level), r.file.data(), r.file.size(), r.line, r.unix_time_us,
         r.message.data(), r.message.size());
  });
}

int ferry_options_table(char** out) {
  return textOut(__func__, out, [](std::string& text) {
    text = ferry::ext::optionsTable();
    return Status::OK();
  });
}

int ferry_cuda_driver_present(void) { return ferry::ext::cudaDriverPresent() ? 1 : 0; }

// ---- configuration ----
ferry_config* ferry_config_new(void) { return new (std::nothrow) ferry_config(); }
void ferry_config_free(ferry_config* config) { delete config; }

int ferry_config_load(ferry_config* config, const char* path_or_json) {
  return guarded(__func__, [&]() -> Status {
    FERRY_RETURN_IF_ERROR(need(config, "config"));
    FERRY_RETURN_IF_ERROR(need(path_or_json, "path_or_json"));
    return config->config.load(path_or_json);
  });
}

int ferry_config_load_env(ferry_config* config) {
  return guarded(__func__, [&]() -> Status {
    FERRY_RETURN_IF_ERROR(need(config, "config"));
    return config->config.loadFromEnv();
  });
}

int ferry_config_set_string(ferry_config* config, const char* key, const char* value) {
  if (!value) return fail(Status::InvalidArgument("value is NULL"), __func__);
  return configSet(__func__, config, key, std::string(value));
}
int ferry_config_set_int(ferry_config* config, const char* key, int64_t value) {
  return configSet(__func__, config, key, value);
}
int ferry_config_set_bool(ferry_config* config, const char* key, int value) {
  return configSet(__func__, config, key, value != 0);
}
int ferry_config_set_double(ferry_config* config, const char* key, double value) {
  return configSet(__func__, config, key, value);
}

int ferry_config_get_string(const ferry_config* config, const char* key, char** out) {
  return textOut(__func__, out, [&](std::string& text) -> Status {
    FERRY_RETURN_IF_ERROR(need(config, "config"));
    FERRY_RETURN_IF_ERROR(need(key, "key"));
    if (!config->config.has(key)) return Status::NotFound(std::string("config key '") + key + "' is not set");
    text = config->config.get<std::string>(key, std::string());
    return Status::OK();
  });
}
int ferry_config_get_int(const ferry_config* config, const char* key, int64_t* out) {
  return configGet(__func__, config, key, out);
}
int ferry_config_get_bool(const ferry_config* config, const char* key, int* out) {
  bool value = false;
  int rc = configGet(__func__, config, key, out ? &value : nullptr);
  if (rc == FERRY_OK) *out = value ? 1 : 0;
  return rc;
}
int ferry_config_get_double(const ferry_config* config, const char* key, double* out) {
  return configGet(__func__, config, key, out);
}

int ferry_config_validate(const ferry_config* config) {
  return guarded(__func__, [&]() -> Status {
    FERRY_RETURN_IF_ERROR(need(config, "config"));
    return config->config.validate();
  });
}

int ferry_config_dump(const ferry_config* config, char** out) {
  return textOut(__func__, out, [&](std::string& text) -> Status {
    FERRY_RETURN_IF_ERROR(need(config, "config"));
    text = config->config.dump();
    return Status::OK();
  });
}

int ferry_config_defaults_json(char** out) {
  return textOut(__func__, out, [](std::string& text) {
    text = ferry::Config::defaultsJson();
    return Status::OK();
  });
}

// ---- engine ----
int ferry_engine_new(const ferry_config* config, ferry_engine** out) {
  return startEngine(__func__, out, [&] {
    auto copy = std::make_shared<ferry::Config>();
    if (config) {
      *copy = config->config;
    } else if (Status st = copy->loadFromEnv(); !st.ok()) {
      throw std::runtime_error("configuration from the environment: " + st.ToString());
    }
    return std::make_unique<ferry_engine>(std::move(copy));
  });
}

int ferry_engine_new_from_json(const char* path_or_json, ferry_engine** out) {
  if (!path_or_json) return fail(Status::InvalidArgument("path_or_json is NULL"), __func__);
  return startEngine(__func__, out,
                     [&] { return std::make_unique<ferry_engine>(std::string(path_or_json)); });
}

void ferry_engine_free(ferry_engine* engine) {
  try {
    delete engine;
  } catch (...) {
    FERRY_LOG(ERROR) << "C API ferry_engine_free: the engine's shutdown threw";
  }
}

int ferry_engine_segment_name(ferry_engine* engine, char** out) {
  return engineTextOut(__func__, engine, out, [&](TransferEngine& e, std::string& text) -> Status {
    text = e.getSegmentName();
    return Status::OK();
  });
}

int ferry_engine_rpc_address(ferry_engine* engine, char** out) {
  return engineTextOut(__func__, engine, out, [&](TransferEngine& e, std::string& text) -> Status {
    text = e.getRpcServerAddress();
    return Status::OK();
  });
}

int ferry_engine_rpc_port(ferry_engine* engine, uint16_t* out) {
  return engineValueOut(__func__, engine, out, [](TransferEngine& e) { return e.getRpcServerPort(); });
}

int ferry_engine_config_dump(ferry_engine* engine, char** out) {
  return engineTextOut(__func__, engine, out, [&](TransferEngine& e, std::string& text) -> Status {
    text = ferry::ext::engineConfig(e).dump();
    return Status::OK();
  });
}

}  // extern "C"
