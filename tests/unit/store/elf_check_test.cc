#include "faas/store/elf_check.h"

#include <elf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/store/hash.h"

#include "unit/store/temp_dir.h"

namespace faas::store {
namespace {

using ::testing::HasSubstr;
using ::testing::IsSupersetOf;

constexpr const char* kAbi =
    "__attribute__((visibility(\"default\"))) const unsigned faas_abi_version = 1;\n";
constexpr const char* kHandle = "int faas_handle(const void* a, void* b) { return 0; }\n";

// Compiles small C sources with the system compiler into one temp dir shared by the suite.
class ElfCheckTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { lib_dir = std::make_unique<testing::TempDir>(); }
  static void TearDownTestSuite() { lib_dir.reset(); }

  void SetUp() override {
    // NOLINTNEXTLINE(cert-env33-c): the test drives the system compiler on purpose
    if (std::system("cc --version >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "no C compiler (cc) to build test libraries";
    }
  }

  // Writes `source` to <name>.c, runs `cc <flags> <name>.c -o <name>` and returns the output.
  static std::string Build(const std::string& name, const std::string& source,
                           const std::string& flags = "-shared -fPIC") {
    std::string base = lib_dir->Path() + "/" + name;
    std::ofstream(base + ".c") << source;
    std::string cmd = "cc " + base + ".c -o " + base + " " + flags + " -L" + lib_dir->Path() +
                      " 2>" + base + ".err";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;  // NOLINT(cert-env33-c): as above
    return Slurp(base);
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static std::string ValidLibrary() {
    static const std::string lib = Build("valid", std::string(kAbi) + kHandle);
    return lib;
  }
  // A copy with the section header table removed from the ELF header, as `sstrip` does.
  static std::string WithoutSectionHeaders(std::string lib) {
    Elf64_Ehdr ehdr;
    std::memcpy(&ehdr, lib.data(), sizeof ehdr);
    ehdr.e_shoff = 0;
    ehdr.e_shnum = 0;
    ehdr.e_shstrndx = 0;
    std::memcpy(lib.data(), &ehdr, sizeof ehdr);
    return lib;
  }
  // End of the last PT_LOAD's file bytes.
  static std::size_t LoadEnd(const std::string& lib) {
    Elf64_Ehdr ehdr;
    std::memcpy(&ehdr, lib.data(), sizeof ehdr);
    std::size_t end = 0;
    for (std::size_t i = 0; i < ehdr.e_phnum; ++i) {
      Elf64_Phdr ph;
      std::memcpy(&ph, lib.data() + ehdr.e_phoff + i * sizeof ph, sizeof ph);
      if (ph.p_type == PT_LOAD) {
        end = std::max<std::size_t>(end, ph.p_offset + ph.p_filesz);
      }
    }
    return end;
  }
  static void ExpectInvalid(std::string_view bytes, const std::string& reason) {
    Result<ElfInfo> r = CheckFunctionElf(bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(reason));
  }

  static inline std::unique_ptr<testing::TempDir> lib_dir;
};

TEST_F(ElfCheckTest, AcceptsMinimalFunctionLibrary) {
  Result<ElfInfo> r = CheckFunctionElf(ValidLibrary());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->abi_version, kSupportedAbiVersion);
  EXPECT_FALSE(r->has_init);
  EXPECT_THAT(AllowedNeededLibraries(), IsSupersetOf(r->needed));
}

TEST_F(ElfCheckTest, ReportsFaasInit) {
  Result<ElfInfo> r = CheckFunctionElf(
      Build("init", std::string(kAbi) + kHandle + "int faas_init(void) { return 0; }\n"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->has_init);
}

TEST_F(ElfCheckTest, AcceptsLibraryWithoutSectionHeadersViaGnuHash) {
  Result<ElfInfo> r = CheckFunctionElf(WithoutSectionHeaders(ValidLibrary()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->abi_version, 1u);
}

TEST_F(ElfCheckTest, AcceptsLibraryWithoutSectionHeadersViaSysvHash) {
  std::string lib =
      Build("sysv", std::string(kAbi) + kHandle + "int faas_init(void) { return 0; }\n",
            "-shared -fPIC -Wl,--hash-style=sysv");
  Result<ElfInfo> r = CheckFunctionElf(WithoutSectionHeaders(lib));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->has_init);
}

TEST_F(ElfCheckTest, RejectsMissingHandle) {
  ExpectInvalid(Build("nohandle", std::string(kAbi) + "int other(void) { return 1; }\n"),
                "does not export faas_handle");
}

TEST_F(ElfCheckTest, RejectsHiddenHandle) {
  ExpectInvalid(
      Build("hidden", std::string(kAbi) + "__attribute__((visibility(\"hidden\"))) int faas_handle("
                                          "const void* a, void* b) { return 0; }\n"
                                          "int other(void) { return faas_handle(0, 0); }\n"),
      "does not export faas_handle");
}

TEST_F(ElfCheckTest, RejectsMissingAbiSymbol) {
  ExpectInvalid(Build("noabi", kHandle), "does not export faas_abi_version: add FAAS_FUNCTION_ABI");
}

TEST_F(ElfCheckTest, RejectsOtherAbiVersion) {
  ExpectInvalid(Build("abi999", std::string(kHandle) +
                                    "__attribute__((visibility(\"default\"))) const unsigned "
                                    "faas_abi_version = 999;\n"),
                "built for faas ABI 999, this platform supports ABI 1; rebuild against the "
                "current sdk");
}

TEST_F(ElfCheckTest, RejectsAbiVersionInBss) {
  ExpectInvalid(
      Build("abibss", std::string(kHandle) + "__attribute__((visibility(\"default\"))) unsigned "
                                             "faas_abi_version;\n"),
      "faas_abi_version is zero-initialised (.bss)");
}

TEST_F(ElfCheckTest, RejectsNonPieExecutable) {
  ExpectInvalid(Build("exec", std::string(kAbi) + kHandle + "int main(void) { return 0; }\n",
                      "-no-pie -fno-pic -rdynamic"),
                "not a shared library (ET_EXEC); build with -shared -fPIC");
}

TEST_F(ElfCheckTest, RejectsPieExecutable) {
  ExpectInvalid(Build("pie", std::string(kAbi) + kHandle + "int main(void) { return 0; }\n",
                      "-fPIE -pie -rdynamic"),
                "is an executable (PIE), not a shared library");
}

TEST_F(ElfCheckTest, RejectsObjectFile) {
  ExpectInvalid(Build("object.o", std::string(kAbi) + kHandle, "-c -fPIC"),
                "not a shared library (ET_REL");
}

TEST_F(ElfCheckTest, RejectsLibraryNeedingUnlistedLibrary) {
  Build("libother.so", "int other(void) { return 1; }\n");
  ExpectInvalid(
      Build("needsother",
            std::string(kAbi) + kHandle + "int other(void); int f(void) { return other(); }\n",
            "-shared -fPIC -lother"),
      "needs \"libother.so\", which is not allowed (allowed: libc.so.6");
}

TEST_F(ElfCheckTest, RejectsText) {
  ExpectInvalid("#!/bin/sh\necho hello\n", "not an ELF file (bad magic)");
  ExpectInvalid("", "not an ELF file (bad magic)");
  ExpectInvalid(
      "\x7f"
      "EL",
      "not an ELF file (bad magic)");
}

TEST_F(ElfCheckTest, RejectsOtherMachine) {
  std::string lib = ValidLibrary();
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, lib.data(), sizeof ehdr);
  ehdr.e_machine = ehdr.e_machine == EM_X86_64 ? EM_AARCH64 : EM_X86_64;
  std::memcpy(lib.data(), &ehdr, sizeof ehdr);
#if defined(__x86_64__)
  ExpectInvalid(lib, "built for AArch64, this machine is x86-64");
#else
  ExpectInvalid(lib, "built for x86-64, this machine is AArch64");
#endif
}

TEST_F(ElfCheckTest, Rejects32BitAndBigEndian) {
  std::string lib = ValidLibrary();
  std::string elf32 = lib;
  elf32[EI_CLASS] = ELFCLASS32;
  ExpectInvalid(elf32, "32-bit ELF");
  std::string big = lib;
  big[EI_DATA] = ELFDATA2MSB;
  ExpectInvalid(big, "big-endian ELF");
}

TEST_F(ElfCheckTest, RejectsInputAbove64MiB) {
  std::string huge(kMaxLibraryBytes + 1, '\0');
  Result<ElfInfo> r = CheckFunctionElf(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

// Every truncation of a valid library is rejected with a reason, and none crashes. With section
// headers (at the end of the file) every strict prefix fails; without them, prefixes that keep
// all PT_LOAD bytes are still complete libraries.
TEST_F(ElfCheckTest, RejectsEveryTruncation) {
  for (bool stripped : {false, true}) {
    std::string lib = stripped ? WithoutSectionHeaders(ValidLibrary()) : ValidLibrary();
    std::size_t must_reject_below = stripped ? LoadEnd(lib) : lib.size();
    std::string_view view = lib;
    for (std::size_t len = 0; len < lib.size(); ++len) {
      Result<ElfInfo> r = CheckFunctionElf(view.substr(0, len));
      if (len < must_reject_below) {
        ASSERT_FALSE(r.ok()) << "prefix of " << len << " bytes accepted, stripped=" << stripped;
      }
      if (!r.ok()) {
        ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
        ASSERT_FALSE(r.status().message().empty());
      }
    }
  }
}

// Random corruption never crashes the reader and only ever yields OK or InvalidArgument.
TEST_F(ElfCheckTest, SurvivesRandomByteFlips) {
  std::mt19937_64 rng(20240601);
  const std::string variants[] = {ValidLibrary(), WithoutSectionHeaders(ValidLibrary())};
  int rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string lib = variants[i % 2];
    std::uniform_int_distribution<std::size_t> pos(0, lib.size() - 1);
    // Bias half of the flips into the headers and dynamic data at the front of the file.
    std::uniform_int_distribution<std::size_t> front(0,
                                                     std::min<std::size_t>(lib.size(), 1024) - 1);
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      std::size_t at = (rng() % 2 == 0) ? front(rng) : pos(rng);
      lib[at] = static_cast<char>(rng());
    }
    Result<ElfInfo> r = CheckFunctionElf(lib);
    if (!r.ok()) {
      ++rejected;
      ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST(Sha256Hex, MatchesKnownDigests) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("x")));
  EXPECT_FALSE(IsSha256Hex("../../etc/passwd"));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));
}

}  // namespace
}  // namespace faas::store
