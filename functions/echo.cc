// echo: returns the request (method, path, query, trigger, queue fields, headers, body) as JSON.
// C++ with function.hpp.
#include <cstdio>
#include <faas/function.hpp>
#include <string>
#include <string_view>

namespace {

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u >= 0x80) {  // keep the output valid JSON for any bytes
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

faas::Response Echo(const faas::Request& req) {
  std::string out = "{\"method\":";
  AppendJsonString(out, req.Method());
  out += ",\"path\":";
  AppendJsonString(out, req.Path());
  out += ",\"query\":";
  AppendJsonString(out, req.Query());
  out += ",\"trigger\":";
  AppendJsonString(out, req.Trigger());
  out += ",\"invocation_id\":";
  AppendJsonString(out, req.InvocationId());
  out += ",\"queue\":";
  AppendJsonString(out, req.Queue());
  out += ",\"message_id\":";
  AppendJsonString(out, req.MessageId());
  out += ",\"attempt\":" + std::to_string(req.Attempt());
  out += ",\"headers\":{";
  for (std::size_t i = 0; i < req.HeaderCount(); ++i) {
    auto [name, value] = req.HeaderAt(i);
    if (i > 0) {
      out += ',';
    }
    AppendJsonString(out, name);
    out += ':';
    AppendJsonString(out, value);
  }
  out += "},\"body\":";
  AppendJsonString(out, req.Body());
  out += "}\n";
  std::fprintf(stderr, "echo: %zu body bytes\n", req.Body().size());
  return faas::Response::Json(std::move(out));
}

}  // namespace

FAAS_HANDLER(Echo)
