// Fuzz target for the deploy path's static ELF check (faas::store::CheckFunctionElf).
//
// Input: the bytes of an uploaded function library. CheckFunctionElf reads them in memory and
// must answer every input with a Status, never crash or read outside the buffer (ASan). An
// accepted library must declare what the check promises (ABI version, allowlisted DT_NEEDED
// names); a refusal must be InvalidArgument with a short printable reason, since the daemon
// returns it to the client as `invalid_artifact` (names from the file are quoted and cut).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "faas/base/status.h"
#include "faas/store/elf_check.h"

namespace {

// Longest reason: the longest fixed text plus one quoted, cut name (Quote shows at most 128
// characters, each at most 4 as \xNN) and the allowlist.
constexpr std::size_t kMaxReasonBytes = 1024;

void Check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool Printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  faas::Result<faas::store::ElfInfo> info = faas::store::CheckFunctionElf(bytes);
  if (info.ok()) {
    Check(info->abi_version == faas::store::kSupportedAbiVersion);
    const auto& allowed = faas::store::AllowedNeededLibraries();
    for (const std::string& name : info->needed) {
      Check(std::find(allowed.begin(), allowed.end(), name) != allowed.end());
    }
    // The check is a pure function of the bytes.
    faas::Result<faas::store::ElfInfo> again = faas::store::CheckFunctionElf(bytes);
    Check(again.ok() && again->needed == info->needed && again->has_init == info->has_init);
    return 0;
  }
  const faas::Status& s = info.status();
  Check(s.code() == faas::StatusCode::kInvalidArgument);
  Check(!s.message().empty());
  Check(s.message().size() <= kMaxReasonBytes);
  Check(Printable(s.message()));
  return 0;
}
