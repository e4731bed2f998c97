// Static validation of an uploaded function library: a bounds-checked ELF64 reader that never
// loads, maps or executes the file (docs/cli.md, first deploy step; the sandboxed probe load is
// the second).
//
//   FAAS_ASSIGN_OR_RETURN(faas::store::ElfInfo info, faas::store::CheckFunctionElf(bytes));
//   // info.abi_version == kSupportedAbiVersion, info.has_init, info.needed = {"libc.so.6"}
//
// Every offset, size and count in the file is checked against the buffer before use, with
// overflow-safe arithmetic, so any input (truncated, corrupted, hostile) yields a Status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "faas/base/status.h"

namespace faas::store {

// The function ABI this platform runs (FAAS_ABI_VERSION in sdk/include/faas/function.h).
inline constexpr uint32_t kSupportedAbiVersion = 1;

// Largest library CheckFunctionElf accepts (and the registry stores): 64 MiB.
inline constexpr std::size_t kMaxLibraryBytes = std::size_t{64} << 20;

// What a valid function library declares.
struct ElfInfo {
  uint32_t abi_version = 0;         // value of the exported faas_abi_version object
  bool has_init = false;            // exports faas_init
  std::vector<std::string> needed;  // DT_NEEDED entries, in file order, all allowlisted
};

// The DT_NEEDED names a function library may depend on (exact names; paths are refused).
// Thread-safe (an immutable static list).
const std::vector<std::string>& AllowedNeededLibraries();

// Checks that `bytes` is a deployable function library for this machine: ELF64 little-endian,
// this machine's e_machine, ET_DYN and not a PIE executable, has PT_DYNAMIC and a dynamic symbol
// table (found through .dynsym, or through DT_SYMTAB + DT_HASH/DT_GNU_HASH when section headers
// are stripped), exports the function faas_handle and the 4-byte object faas_abi_version equal
// to kSupportedAbiVersion, and needs only AllowedNeededLibraries().
// Errors: InvalidArgument with a human reason (the daemon answers `invalid_artifact` with it);
// ResourceExhausted above kMaxLibraryBytes. Pure function; thread-safe.
faas::Result<ElfInfo> CheckFunctionElf(std::string_view bytes);

}  // namespace faas::store
