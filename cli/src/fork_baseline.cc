// The baseline of `faasctl bench cold-start`: faas-fork-baseline run as a separate process.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_report.h"

namespace faas::cli {

// See bench_report.h.
Result<std::vector<double>> ForkBaseline(std::chrono::milliseconds pause, uint32_t count) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path helper = self.parent_path() / "faas-fork-baseline";
  if (ec || !std::filesystem::exists(helper)) {
    return InternalError("the baseline helper " + helper.string() +
                         " is missing (it is built and installed with faasctl)");
  }
  std::string quoted = "'";
  for (char c : helper.string()) {
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  quoted += "' " + std::to_string(pause.count()) + " " + std::to_string(count);
  std::FILE* p = ::popen(quoted.c_str(), "r");
  if (p == nullptr) {
    return ErrnoError(errno, "popen", helper.string());
  }
  std::vector<double> out;
  char line[64];
  while (std::fgets(line, sizeof line, p) != nullptr) {
    out.push_back(std::strtod(line, nullptr));
  }
  if (::pclose(p) != 0 || out.size() != count) {
    return InternalError("the baseline helper " + helper.string() + " failed");
  }
  return out;
}

}  // namespace faas::cli
