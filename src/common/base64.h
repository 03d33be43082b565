#pragma once

#include <string>
#include <string_view>

namespace ferry {

std::string base64Encode(std::string_view in);
/// False on characters outside the alphabet or bad padding.
bool base64Decode(std::string_view in, std::string& out);

}  // namespace ferry
