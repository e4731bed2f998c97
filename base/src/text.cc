#include "faas/base/text.h"

#include <cstdint>

namespace faas {

bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80U) {
      ++i;
      continue;
    } else if ((c & 0xE0U) == 0xC0U) {
      len = 2;
      cp = c & 0x1FU;
    } else if ((c & 0xF0U) == 0xE0U) {
      len = 3;
      cp = c & 0x0FU;
    } else if ((c & 0xF8U) == 0xF0U) {
      len = 4;
      cp = c & 0x07U;
    } else {
      return false;
    }
    if (i + len > s.size()) {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0U) != 0x80U) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3FU);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF are invalid (RFC 3629 §3).
    static constexpr uint32_t kMinForLen[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLen[len] || cp > 0x10FFFFU || (cp >= 0xD800U && cp <= 0xDFFFU)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string Base64Encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t n = (uint32_t{static_cast<unsigned char>(data[i])} << 16) |
                 (uint32_t{static_cast<unsigned char>(data[i + 1])} << 8) |
                 uint32_t{static_cast<unsigned char>(data[i + 2])};
    out += kAlphabet[(n >> 18) & 63U];
    out += kAlphabet[(n >> 12) & 63U];
    out += kAlphabet[(n >> 6) & 63U];
    out += kAlphabet[n & 63U];
  }
  std::size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t n = uint32_t{static_cast<unsigned char>(data[i])} << 16;
    if (rest == 2) {
      n |= uint32_t{static_cast<unsigned char>(data[i + 1])} << 8;
    }
    out += kAlphabet[(n >> 18) & 63U];
    out += kAlphabet[(n >> 12) & 63U];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63U] : '=';
    out += '=';
  }
  return out;
}

std::string QuoteForMessage(std::string_view s, std::size_t max_shown) {
  std::string out = "\"";
  for (const char c : s.substr(0, max_shown)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') ? c : '?';
  }
  if (s.size() > max_shown) {
    out += "...";
  }
  return out + "\"";
}

}  // namespace faas
