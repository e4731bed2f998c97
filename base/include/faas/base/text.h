// Byte-string helpers shared by the layers that show bytes to people or put them in JSON.
//
//   std::string shown = faas::IsValidUtf8(body) ? body : faas::Base64Encode(body);
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace faas {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF). Empty is valid.
bool IsValidUtf8(std::string_view s);

// Standard base64 (RFC 4648 §4) with padding.
std::string Base64Encode(std::string_view data);

// `s` in double quotes for an error or log message: printable ASCII kept, every other byte and
// `"` and `\` shown as '?', at most `max_shown` bytes, then `...` inside the quotes.
std::string QuoteForMessage(std::string_view s,
                            std::size_t max_shown = std::string_view::npos);

}  // namespace faas
