#include "ferry/status.h"

namespace ferry {

const char* Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kNotFound: return "NotFound";
    case Code::kAlreadyExists: return "AlreadyExists";
    case Code::kPermissionDenied: return "PermissionDenied";
    case Code::kOutOfRange: return "OutOfRange";
    case Code::kNotSupported: return "NotSupported";
    case Code::kNotImplemented: return "NotImplemented";
    case Code::kUnavailable: return "Unavailable";
    case Code::kTimeout: return "Timeout";
    case Code::kBusy: return "Busy";
    case Code::kCanceled: return "Canceled";
    case Code::kCorrupted: return "Corrupted";
    case Code::kInternalError: return "InternalError";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = CodeName(code_);
  if (!msg_.empty()) {
    s += ": ";
    s += msg_;
  }
  return s;
}

}  // namespace ferry
