// Byte-string helpers shared by the layers that show bytes to people or put them in JSON.
//
//   std::string shown = faas::IsValidUtf8(body) ? body : faas::Base64Encode(body);
#pragma once

#include <string>
#include <string_view>

namespace faas {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF). Empty is valid.
bool IsValidUtf8(std::string_view s);

// Standard base64 (RFC 4648 §4) with padding.
std::string Base64Encode(std::string_view data);

}  // namespace faas
