#include "faas/base/log.h"

#include <cstdio>
#include <map>
#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>

namespace faas::log {
namespace {

struct Registry {
  std::mutex mu;
  spdlog::level::level_enum default_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum, std::less<>> overrides;
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
};

Registry& Reg() {
  static Registry* r = new Registry();  // never destroyed: loggers are used during shutdown
  return *r;
}

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) {
    return true;
  }
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || c == '"' || c == '\\' || c == '=' || u >= 0x7f) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::shared_ptr<spdlog::logger> Get(const std::string& name) {
  Registry& r = Reg();
  std::lock_guard lock(r.mu);
  auto it = r.loggers.find(name);
  if (it != r.loggers.end()) {
    return it->second;
  }
  auto logger = std::make_shared<spdlog::logger>(name, r.sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e [%l] [%n] %v");
  auto ov = r.overrides.find(name);
  logger->set_level(ov != r.overrides.end() ? ov->second : r.default_level);
  r.loggers.emplace(name, logger);
  return logger;
}

bool SetLevels(std::string_view spec) {
  Registry& r = Reg();
  std::lock_guard lock(r.mu);
  while (!spec.empty()) {
    auto comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    auto eq = item.find('=');
    std::string level_name(eq == std::string_view::npos ? item : item.substr(eq + 1));
    auto level = spdlog::level::from_str(level_name);
    if (level == spdlog::level::off && level_name != "off") {
      return false;
    }
    if (eq == std::string_view::npos) {
      r.default_level = level;
      for (auto& [name, logger] : r.loggers) {
        if (!r.overrides.contains(name)) {
          logger->set_level(level);
        }
      }
    } else {
      std::string name(item.substr(0, eq));
      r.overrides[name] = level;
      auto it = r.loggers.find(name);
      if (it != r.loggers.end()) {
        it->second->set_level(level);
      }
    }
  }
  return true;
}

Field::Field(std::string_view k, std::string_view v) : key(k) {
  if (!NeedsQuotes(v)) {
    value = v;
    return;
  }
  value.reserve(v.size() + 2);
  value += '"';
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      value += '\\';
      value += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      value += buf;
    } else {
      value += c;
    }
  }
  value += '"';
}

Field::Field(std::string_view k, double v) : key(k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  value = buf;
}

std::string Format(std::string_view event, std::initializer_list<Field> fields) {
  std::string out(event);
  for (const Field& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    out += f.value;
  }
  return out;
}

}  // namespace faas::log
