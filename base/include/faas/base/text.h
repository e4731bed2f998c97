// Byte-string helpers shared by the layers that show bytes to people or put them in JSON.
//
//   std::string shown = faas::IsValidUtf8(body) ? body : faas::Base64Encode(body);
//   std::string json = "{\"message\":\"" + faas::JsonEscape(message) + "\"}";
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace faas {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF). Empty is valid.
bool IsValidUtf8(std::string_view s);

// Length (1 to 4) of the well-formed UTF-8 sequence that starts at s[i] (Unicode 15 table 3-7,
// the same rules as IsValidUtf8), or 0 when the bytes there are not one. Requires i < s.size().
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i);

// Escapes text for use inside a JSON string literal (quotes not included). The result is valid
// JSON for any input bytes: '"', '\\' and control characters are escaped (\b \f \n \r \t, else
// \u00XX), valid UTF-8 passes through, and each byte of an invalid UTF-8 sequence (overlong
// forms, surrogates, code points above U+10FFFF, truncated sequences) becomes \ufffd.
std::string JsonEscape(std::string_view s);

// Appends `bytes` in double quotes as a JSON string literal that maps back to exactly those
// bytes: '"' and '\\' are backslash-escaped, printable ASCII stays readable, and every other byte
// (controls, DEL, 0x80-0xff) becomes \u00XX, one code point below U+0100 per byte (no \n-style
// short forms). A JSON decoder yields one code point per original byte. For stored data (the
// ledger journal, queue headers), not for text shown to people: use JsonEscape there.
void AppendJsonBytes(std::string& out, std::string_view bytes);

// Standard base64 (RFC 4648 §4) with padding.
std::string Base64Encode(std::string_view data);

// `s` in double quotes for an error or log message: printable ASCII kept, every other byte and
// `"` and `\` shown as '?', at most `max_shown` bytes, then `...` inside the quotes.
std::string QuoteForMessage(std::string_view s, std::size_t max_shown = std::string_view::npos);

}  // namespace faas
