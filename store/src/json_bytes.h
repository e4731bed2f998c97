// Private: a JSON string literal for arbitrary bytes, shared by the ledger journal and the queue's
// stored headers. Each byte outside printable ASCII becomes \u00XX (one code point per byte,
// below U+0100), so any bytes give valid JSON and map back exactly; ASCII stays readable.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace faas::store {

inline void AppendJsonBytes(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      constexpr std::string_view kHex = "0123456789abcdef";
      out += "\\u00";
      out += kHex[std::size_t{u} >> 4];
      out += kHex[std::size_t{u} & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace faas::store
