// Status: the result of every fallible Ferry call (code + message), in the style of
// RocksDB/Abseil. It is [[nodiscard]] so an unchecked error is a compiler warning.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#pragma GCC visibility push(default)  // libferry.so exports the public API only
namespace ferry {

class [[nodiscard]] Status {
 public:
  enum class Code : uint8_t {
    kOk = 0,
    kInvalidArgument,   // the caller passed something malformed or out of range
    kNotFound,          // unknown segment, batch, buffer or key
    kAlreadyExists,     // e.g. overlapping registration
    kPermissionDenied,  // buffer permission forbids the access
    kOutOfRange,        // an address range leaves its registered buffer
    kNotSupported,      // optional operation a component does not offer
    kNotImplemented,    // declared but not built (yet)
    kUnavailable,       // a peer or service cannot be reached
    kTimeout,           // a deadline passed
    kBusy,              // resource in use (e.g. batch with tasks in flight)
    kCanceled,          // work stopped on request (e.g. engine shutdown)
    kCorrupted,         // a malformed wire message or descriptor
    kInternalError,     // a bug or an unexpected system failure
  };

  Status() = default;  // OK
  Status(Code code, std::string_view msg) : code_(code), msg_(msg) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string_view m) { return {Code::kInvalidArgument, m}; }
  static Status NotFound(std::string_view m) { return {Code::kNotFound, m}; }
  static Status AlreadyExists(std::string_view m) { return {Code::kAlreadyExists, m}; }
  static Status PermissionDenied(std::string_view m) { return {Code::kPermissionDenied, m}; }
  static Status OutOfRange(std::string_view m) { return {Code::kOutOfRange, m}; }
  static Status NotSupported(std::string_view m) { return {Code::kNotSupported, m}; }
  static Status NotImplemented(std::string_view m) { return {Code::kNotImplemented, m}; }
  static Status Unavailable(std::string_view m) { return {Code::kUnavailable, m}; }
  static Status Timeout(std::string_view m) { return {Code::kTimeout, m}; }
  static Status Busy(std::string_view m) { return {Code::kBusy, m}; }
  static Status Canceled(std::string_view m) { return {Code::kCanceled, m}; }
  static Status Corrupted(std::string_view m) { return {Code::kCorrupted, m}; }
  static Status InternalError(std::string_view m) { return {Code::kInternalError, m}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }

  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsTimeout() const { return code_ == Code::kTimeout; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsPermissionDenied() const { return code_ == Code::kPermissionDenied; }
  bool IsNotSupported() const { return code_ == Code::kNotSupported; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }

  /// "OK" or "<CodeName>: <message>".
  std::string ToString() const;
  /// Name of a code, e.g. "InvalidArgument".
  static const char* CodeName(Code code);

  /// Explicitly discard a status whose failure is acceptable at this call site.
  void IgnoreError() const {}

  bool operator==(const Status& o) const { return code_ == o.code_ && msg_ == o.msg_; }

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

}  // namespace ferry
#pragma GCC visibility pop

/// Return early from the enclosing function when `expr` is not OK.
#define FERRY_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::ferry::Status _ferry_st = (expr);        \
    if (!_ferry_st.ok()) return _ferry_st;     \
  } while (0)
