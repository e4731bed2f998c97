#include "faas/gateway/errors.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace faas::gateway {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i] (Unicode 15 table 3-7), or 0.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(i);
  const std::size_t left = s.size() - i;
  auto cont = [&](std::size_t k, uint8_t lo = 0x80, uint8_t hi = 0xBF) {
    return k < left && byte(i + k) >= lo && byte(i + k) <= hi;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    uint8_t lo = 0x80;
    uint8_t hi = 0xBF;
    if (b0 == 0xE0) {
      lo = 0xA0;  // no overlong forms
    } else if (b0 == 0xED) {
      hi = 0x9F;  // no UTF-16 surrogates
    }
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    uint8_t lo = 0x80;
    uint8_t hi = 0xBF;
    if (b0 == 0xF0) {
      lo = 0x90;  // no overlong forms
    } else if (b0 == 0xF4) {
      hi = 0x8F;  // nothing above U+10FFFF
    }
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

}  // namespace

std::string JsonEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + s.size() / 8 + 2);
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out;
}

HttpResponse MakeErrorResponse(int status, std::string_view code, std::string_view message,
                               std::string_view invocation_id, int retry_after_s) {
  HttpResponse res;
  res.status = status;
  res.headers.emplace_back("Content-Type", "application/json");
  res.headers.emplace_back("X-Invocation-Id", std::string(invocation_id));
  if (retry_after_s > 0) {
    res.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  }
  res.body.reserve(64 + code.size() + message.size() + invocation_id.size());
  res.body += R"({"error":{"code":")";
  res.body += JsonEscape(code);
  res.body += R"(","message":")";
  res.body += JsonEscape(message);
  res.body += R"(","invocation_id":")";
  res.body += JsonEscape(invocation_id);
  res.body += "\"}}";
  return res;
}

}  // namespace faas::gateway
