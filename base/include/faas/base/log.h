// Structured logging on spdlog: one named logger per folder, lines of "event key=value ...".
//
//   auto log = faas::log::Get("scheduler");
//   FAAS_LOG(log, info, "instance.started", {"fn", name}, {"pid", pid}, {"cold_ms", 0.84});
//   // [info] [scheduler] instance.started fn=resize pid=4242 cold_ms=0.840
//
// String values are quoted and escaped when they contain spaces, quotes or control characters,
// so a value from a user or a function cannot forge a field. Thread-safe.
#pragma once

#include <concepts>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace faas::log {

// Returns the logger for `name`, creating it (stderr, shared level) on first use.
std::shared_ptr<spdlog::logger> Get(const std::string& name);
// "info" or "info,scheduler=debug,gateway=warn". Applies to existing and future loggers.
bool SetLevels(std::string_view spec);

struct Field {
  Field(std::string_view k, std::string_view v);
  Field(std::string_view k, const std::string& v) : Field(k, std::string_view(v)) {}
  Field(std::string_view k, const char* v) : Field(k, std::string_view(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  Field(std::string_view k, double v);
  template <std::integral T>
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
  std::string_view key;
  std::string value;
};

std::string Format(std::string_view event, std::initializer_list<Field> fields);

}  // namespace faas::log

// `lvl` is a spdlog level name: trace, debug, info, warn, err, critical.
#define FAAS_LOG(logger, lvl, event, ...)                                           \
  do {                                                                              \
    if ((logger)->should_log(spdlog::level::lvl)) {                                 \
      (logger)->log(spdlog::level::lvl, ::faas::log::Format(event, {__VA_ARGS__})); \
    }                                                                               \
  } while (false)
