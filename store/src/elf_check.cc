#include "faas/store/elf_check.h"

#include <elf.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <utility>

namespace faas::store {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the ELF reader reads fields in host order and accepts only ELFDATA2LSB");

#if defined(__x86_64__)
constexpr uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kHostMachine = EM_AARCH64;
#else
#error "faas runs on x86-64 and AArch64 hosts only"
#endif

std::string MachineName(uint16_t machine) {
  static constexpr std::pair<uint16_t, const char*> kNames[] = {
      {EM_X86_64, "x86-64"}, {EM_AARCH64, "AArch64"}, {EM_386, "i386"},   {EM_ARM, "32-bit ARM"},
      {EM_RISCV, "RISC-V"},  {EM_PPC64, "PowerPC64"}, {EM_S390, "s390x"}, {EM_MIPS, "MIPS"},
  };
  for (const auto& [m, name] : kNames) {
    if (m == machine) {
      return name;
    }
  }
  return "e_machine " + std::to_string(machine);
}

// Quotes a string taken from the file for an error message: printable ASCII stays, the rest is
// \xNN, and long values are cut, so a hostile name cannot forge or flood the message.
std::string Quote(std::string_view s) {
  constexpr std::size_t kMaxShown = 128;
  std::string out = "\"";
  for (char c : s.substr(0, kMaxShown)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  out += s.size() > kMaxShown ? "...\"" : "\"";
  return out;
}

faas::Status Invalid(std::string why) {
  return faas::InvalidArgumentError(std::move(why));
}

// A file range [off, off + size) already checked to lie inside the input.
struct Range {
  uint64_t off = 0;
  uint64_t size = 0;
};

struct Segment {  // file bytes of one PT_LOAD
  uint64_t vaddr = 0;
  uint64_t offset = 0;
  uint64_t filesz = 0;
};

// One pass over one input. Every read goes through Contains()/Read(), which refuse any range
// that is not entirely inside the buffer; counts are bounded by the buffer size before any
// multiplication, so no arithmetic can overflow.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : in_(bytes) {}

  faas::Result<ElfInfo> Run() {
    FAAS_RETURN_IF_ERROR(ReadHeader());
    FAAS_RETURN_IF_ERROR(ReadProgramHeaders());
    FAAS_RETURN_IF_ERROR(ReadSectionHeaders());
    FAAS_RETURN_IF_ERROR(ReadDynamic());
    FAAS_RETURN_IF_ERROR(CheckNeeded());
    FAAS_RETURN_IF_ERROR(FindSymbolTable());
    FAAS_RETURN_IF_ERROR(CheckSymbols());
    return std::move(info_);
  }

 private:
  bool Contains(uint64_t off, uint64_t len) const {
    return off <= in_.size() && len <= in_.size() - off;
  }
  // True if `count` entries of `entsize` bytes starting at `off` lie inside the input.
  bool ContainsArray(uint64_t off, uint64_t count, uint64_t entsize) const {
    return entsize != 0 && count <= in_.size() / entsize && Contains(off, count * entsize);
  }
  template <typename T>
  std::optional<T> Read(uint64_t off) const {
    if (!Contains(off, sizeof(T))) {
      return std::nullopt;
    }
    T value;
    std::memcpy(&value, in_.data() + off, sizeof(T));
    return value;
  }
  // The NUL-terminated string at `index` in string table `table`.
  std::optional<std::string_view> String(Range table, uint64_t index) const {
    if (index >= table.size) {
      return std::nullopt;
    }
    std::string_view tab = in_.substr(table.off, table.size);
    std::size_t end = tab.find('\0', index);
    if (end == std::string_view::npos) {
      return std::nullopt;
    }
    return tab.substr(index, end - index);
  }
  // Maps virtual addresses [vaddr, vaddr + len) to a file offset, if they lie in the file bytes
  // of one PT_LOAD (addresses only in p_memsz, like .bss, have no bytes in the file).
  std::optional<uint64_t> VaddrToOffset(uint64_t vaddr, uint64_t len) const {
    for (const Segment& s : segments_) {
      if (vaddr >= s.vaddr && vaddr - s.vaddr <= s.filesz && len <= s.filesz - (vaddr - s.vaddr)) {
        return s.offset + (vaddr - s.vaddr);
      }
    }
    return std::nullopt;
  }

  faas::Status ReadHeader() {
    if (in_.size() < SELFMAG || std::memcmp(in_.data(), ELFMAG, SELFMAG) != 0) {
      return Invalid("not an ELF file (bad magic)");
    }
    if (in_.size() < EI_NIDENT) {
      return Invalid("truncated ELF header");
    }
    auto elf_class = static_cast<unsigned char>(in_[EI_CLASS]);
    if (elf_class == ELFCLASS32) {
      return Invalid("32-bit ELF (ELFCLASS32); only 64-bit libraries are supported");
    }
    if (elf_class != ELFCLASS64) {
      return Invalid("unknown ELF class " + std::to_string(elf_class));
    }
    auto data = static_cast<unsigned char>(in_[EI_DATA]);
    if (data == ELFDATA2MSB) {
      return Invalid("big-endian ELF (ELFDATA2MSB); this machine is little-endian");
    }
    if (data != ELFDATA2LSB) {
      return Invalid("unknown ELF data encoding " + std::to_string(data));
    }
    std::optional<Elf64_Ehdr> ehdr = Read<Elf64_Ehdr>(0);
    if (!ehdr) {
      return Invalid("truncated ELF header");
    }
    ehdr_ = *ehdr;
    if (ehdr_.e_machine != kHostMachine) {
      return Invalid("built for " + MachineName(ehdr_.e_machine) + ", this machine is " +
                     MachineName(kHostMachine));
    }
    switch (ehdr_.e_type) {
      case ET_DYN:
        return faas::OkStatus();
      case ET_EXEC:
        return Invalid("not a shared library (ET_EXEC); build with -shared -fPIC");
      case ET_REL:
        return Invalid("not a shared library (ET_REL, an object file); build with -shared -fPIC");
      case ET_CORE:
        return Invalid("not a shared library (ET_CORE, a core dump)");
      default:
        return Invalid("not a shared library (e_type " + std::to_string(ehdr_.e_type) +
                       "); build with -shared -fPIC");
    }
  }

  faas::Status ReadProgramHeaders() {
    if (ehdr_.e_phnum == 0) {
      return Invalid("no program headers, so no PT_DYNAMIC segment");
    }
    if (ehdr_.e_phentsize != sizeof(Elf64_Phdr)) {
      return Invalid("bad program header size e_phentsize=" + std::to_string(ehdr_.e_phentsize));
    }
    if (ehdr_.e_phnum == PN_XNUM) {
      return Invalid("too many program headers (PN_XNUM)");
    }
    if (!ContainsArray(ehdr_.e_phoff, ehdr_.e_phnum, sizeof(Elf64_Phdr))) {
      return Invalid("program header table lies outside the file (truncated?)");
    }
    bool have_dynamic = false;
    for (uint64_t i = 0; i < ehdr_.e_phnum; ++i) {
      std::optional<Elf64_Phdr> ph = Read<Elf64_Phdr>(ehdr_.e_phoff + i * sizeof(Elf64_Phdr));
      if (!ph) {
        return Invalid("truncated program header table");
      }
      if (ph->p_type == PT_LOAD) {
        if (!Contains(ph->p_offset, ph->p_filesz)) {
          return Invalid("PT_LOAD segment " + std::to_string(i) +
                         " lies outside the file (truncated?)");
        }
        segments_.push_back({ph->p_vaddr, ph->p_offset, ph->p_filesz});
      } else if (ph->p_type == PT_DYNAMIC) {
        if (have_dynamic) {
          return Invalid("more than one PT_DYNAMIC segment");
        }
        if (!Contains(ph->p_offset, ph->p_filesz)) {
          return Invalid("PT_DYNAMIC segment lies outside the file (truncated?)");
        }
        have_dynamic = true;
        dynamic_ = {ph->p_offset, ph->p_filesz};
      }
    }
    if (!have_dynamic) {
      return Invalid("no PT_DYNAMIC segment: not a dynamically linked shared library");
    }
    return faas::OkStatus();
  }

  faas::Status ReadSectionHeaders() {
    if (ehdr_.e_shoff == 0) {
      return faas::OkStatus();  // stripped of section headers: the dynamic segment suffices
    }
    if (ehdr_.e_shentsize != sizeof(Elf64_Shdr)) {
      return Invalid("bad section header size e_shentsize=" + std::to_string(ehdr_.e_shentsize));
    }
    uint64_t count = ehdr_.e_shnum;
    if (count == 0) {  // extended numbering: the real count is in section 0's sh_size
      std::optional<Elf64_Shdr> sh0 = Read<Elf64_Shdr>(ehdr_.e_shoff);
      if (!sh0) {
        return Invalid("section header table lies outside the file (truncated?)");
      }
      count = sh0->sh_size;
    }
    if (!ContainsArray(ehdr_.e_shoff, count, sizeof(Elf64_Shdr))) {
      return Invalid("section header table lies outside the file (truncated?)");
    }
    section_count_ = count;
    return faas::OkStatus();
  }

  std::optional<Elf64_Shdr> Section(uint64_t index) const {
    if (index >= section_count_) {
      return std::nullopt;
    }
    return Read<Elf64_Shdr>(ehdr_.e_shoff + index * sizeof(Elf64_Shdr));
  }

  faas::Status ReadDynamic() {
    uint64_t count = dynamic_.size / sizeof(Elf64_Dyn);
    for (uint64_t i = 0; i < count; ++i) {
      std::optional<Elf64_Dyn> d = Read<Elf64_Dyn>(dynamic_.off + i * sizeof(Elf64_Dyn));
      if (!d || d->d_tag == DT_NULL) {
        break;
      }
      uint64_t v = d->d_un.d_val;
      switch (d->d_tag) {
        case DT_NEEDED:
          needed_offsets_.push_back(v);
          break;
        case DT_STRTAB:
          dt_strtab_ = v;
          break;
        case DT_STRSZ:
          dt_strsz_ = v;
          break;
        case DT_SYMTAB:
          dt_symtab_ = v;
          break;
        case DT_SYMENT:
          dt_syment_ = v;
          break;
        case DT_HASH:
          dt_hash_ = v;
          break;
        case DT_GNU_HASH:
          dt_gnu_hash_ = v;
          break;
        case DT_FLAGS_1:
          if ((v & DF_1_PIE) != 0) {
            return Invalid(
                "is an executable (PIE), not a shared library; build with -shared -fPIC");
          }
          break;
        default:
          break;
      }
    }
    if (dt_strtab_ && dt_strsz_) {
      std::optional<uint64_t> off = VaddrToOffset(*dt_strtab_, *dt_strsz_);
      if (!off) {
        return Invalid("dynamic string table (DT_STRTAB) lies outside the file");
      }
      dynstr_ = Range{*off, *dt_strsz_};
    }
    return faas::OkStatus();
  }

  faas::Status CheckNeeded() {
    if (!needed_offsets_.empty() && !dynstr_) {
      return Invalid("DT_NEEDED entries but no dynamic string table (DT_STRTAB/DT_STRSZ)");
    }
    const std::vector<std::string>& allowed = AllowedNeededLibraries();
    for (uint64_t index : needed_offsets_) {
      std::optional<std::string_view> name = String(*dynstr_, index);
      if (!name) {
        return Invalid("DT_NEEDED entry points outside the dynamic string table");
      }
      if (name->find('/') != std::string_view::npos) {
        return Invalid("needs " + Quote(*name) + " by path; only plain library names are allowed");
      }
      if (std::find(allowed.begin(), allowed.end(), *name) == allowed.end()) {
        std::string list;
        for (const std::string& a : allowed) {
          list += (list.empty() ? "" : ", ") + a;
        }
        return Invalid("needs " + Quote(*name) + ", which is not allowed (allowed: " + list + ")");
      }
      info_.needed.emplace_back(*name);
    }
    return faas::OkStatus();
  }

  // Locates the dynamic symbol table: .dynsym and its sh_link string table when section
  // headers exist, else DT_SYMTAB/DT_STRTAB sized by DT_HASH or DT_GNU_HASH.
  faas::Status FindSymbolTable() {
    for (uint64_t i = 0; i < section_count_; ++i) {
      std::optional<Elf64_Shdr> sh = Section(i);
      if (!sh || sh->sh_type != SHT_DYNSYM) {
        continue;
      }
      if (sh->sh_entsize != sizeof(Elf64_Sym)) {
        return Invalid(".dynsym has entry size " + std::to_string(sh->sh_entsize) + ", expected " +
                       std::to_string(sizeof(Elf64_Sym)));
      }
      std::optional<Elf64_Shdr> str = Section(sh->sh_link);
      if (!str || str->sh_type != SHT_STRTAB || !Contains(str->sh_offset, str->sh_size)) {
        return Invalid(".dynsym has no valid string table (sh_link)");
      }
      uint64_t count = sh->sh_size / sizeof(Elf64_Sym);
      if (!ContainsArray(sh->sh_offset, count, sizeof(Elf64_Sym))) {
        return Invalid(".dynsym lies outside the file (truncated?)");
      }
      symtab_ = Range{sh->sh_offset, count};
      symstr_ = Range{str->sh_offset, str->sh_size};
      return faas::OkStatus();
    }
    if (!dt_symtab_) {
      return Invalid("no dynamic symbol table (no .dynsym section and no DT_SYMTAB)");
    }
    if (!dynstr_) {
      return Invalid("no dynamic string table (DT_STRTAB/DT_STRSZ)");
    }
    if (dt_syment_ && *dt_syment_ != sizeof(Elf64_Sym)) {
      return Invalid("DT_SYMENT is " + std::to_string(*dt_syment_) + ", expected " +
                     std::to_string(sizeof(Elf64_Sym)));
    }
    std::optional<uint64_t> count;
    if (dt_hash_) {
      count = HashSymbolCount(*dt_hash_);
    } else if (dt_gnu_hash_) {
      count = GnuHashSymbolCount(*dt_gnu_hash_);
    } else {
      return Invalid("no DT_HASH or DT_GNU_HASH, so the dynamic symbol table cannot be sized");
    }
    if (!count) {
      return Invalid("malformed symbol hash table (DT_HASH/DT_GNU_HASH)");
    }
    std::optional<uint64_t> off;
    if (*count <= in_.size() / sizeof(Elf64_Sym)) {
      off = VaddrToOffset(*dt_symtab_, *count * sizeof(Elf64_Sym));
    }
    if (!off) {
      return Invalid("dynamic symbol table (DT_SYMTAB) lies outside the file");
    }
    symtab_ = Range{*off, *count};
    symstr_ = *dynstr_;
    return faas::OkStatus();
  }

  std::optional<uint32_t> ReadWordAt(uint64_t vaddr) const {
    std::optional<uint64_t> off = VaddrToOffset(vaddr, sizeof(uint32_t));
    return off ? Read<uint32_t>(*off) : std::nullopt;
  }

  // DT_HASH: {nbucket, nchain, ...}; nchain equals the number of symbols.
  std::optional<uint64_t> HashSymbolCount(uint64_t vaddr) const {
    if (vaddr > UINT64_MAX - 8) {
      return std::nullopt;
    }
    std::optional<uint32_t> nchain = ReadWordAt(vaddr + 4);
    return nchain ? std::optional<uint64_t>(*nchain) : std::nullopt;
  }

  // DT_GNU_HASH: {nbuckets, symoffset, bloom_size, bloom_shift}, bloom[bloom_size] (8 bytes
  // each on ELF64), buckets[nbuckets], chains[]. The symbol count is one past the last chain
  // entry of the highest bucket, i.e. the first chain word from there with its low bit set.
  std::optional<uint64_t> GnuHashSymbolCount(uint64_t vaddr) const {
    std::optional<uint64_t> hdr = VaddrToOffset(vaddr, 16);
    if (!hdr) {
      return std::nullopt;
    }
    uint64_t nbuckets = *Read<uint32_t>(*hdr);
    uint64_t symoffset = *Read<uint32_t>(*hdr + 4);
    uint64_t bloom_size = *Read<uint32_t>(*hdr + 8);
    // All three are < 2^32, so these sums cannot overflow.
    uint64_t buckets_rel = 16 + bloom_size * 8;
    uint64_t chains_rel = buckets_rel + nbuckets * 4;
    if (vaddr > UINT64_MAX - chains_rel) {
      return std::nullopt;
    }
    std::optional<uint64_t> buckets = VaddrToOffset(vaddr + buckets_rel, nbuckets * 4);
    if (!buckets) {
      return std::nullopt;
    }
    uint64_t last = 0;
    for (uint64_t i = 0; i < nbuckets; ++i) {
      last = std::max<uint64_t>(last, *Read<uint32_t>(*buckets + i * 4));
    }
    if (last == 0 || last < symoffset) {
      return symoffset;  // no hashed symbols (all below symoffset are unhashed)
    }
    // Each step reads a word inside the file, so the walk ends within in_.size() / 4 steps.
    for (uint64_t index = last;; ++index) {
      uint64_t rel = (index - symoffset) * 4;
      if (index - symoffset > in_.size() / 4 || vaddr + chains_rel > UINT64_MAX - rel) {
        return std::nullopt;
      }
      std::optional<uint32_t> chain = ReadWordAt(vaddr + chains_rel + rel);
      if (!chain) {
        return std::nullopt;
      }
      if ((*chain & 1) != 0) {
        return index + 1;
      }
    }
  }

  struct Lookup {
    std::optional<Elf64_Sym> sym;  // the exported definition, if any
    std::string why_not;           // why a same-named entry does not count as an export
  };

  static std::string WhyNotExported(const Elf64_Sym& s, unsigned char want_type) {
    if (s.st_shndx == SHN_UNDEF) {
      return "it is referenced but not defined";
    }
    unsigned char bind = ELF64_ST_BIND(s.st_info);
    if (bind != STB_GLOBAL && bind != STB_WEAK) {
      return "it is not a global symbol";
    }
    unsigned char vis = ELF64_ST_VISIBILITY(s.st_other);
    if (vis != STV_DEFAULT && vis != STV_PROTECTED) {
      return "it is hidden; mark it FAAS_EXPORT";
    }
    unsigned char type = ELF64_ST_TYPE(s.st_info);
    if (type != want_type) {
      if (want_type == STT_FUNC) {
        return "it is not a function";
      }
      return type == STT_TLS ? "it is thread-local" : "it is not a data object";
    }
    return {};
  }

  faas::Status CheckSymbols() {
    struct Wanted {
      std::string_view name;
      unsigned char type;
      Lookup found;
    };
    Wanted wanted[] = {{"faas_handle", STT_FUNC, {}},
                       {"faas_abi_version", STT_OBJECT, {}},
                       {"faas_init", STT_FUNC, {}}};
    for (uint64_t i = 0; i < symtab_.size; ++i) {
      std::optional<Elf64_Sym> sym = Read<Elf64_Sym>(symtab_.off + i * sizeof(Elf64_Sym));
      if (!sym) {
        return Invalid("truncated dynamic symbol table");
      }
      std::optional<std::string_view> name = String(symstr_, sym->st_name);
      if (!name) {
        continue;  // a name outside the string table cannot be one we look for
      }
      for (Wanted& w : wanted) {
        if (*name != w.name || w.found.sym) {
          continue;
        }
        std::string why = WhyNotExported(*sym, w.type);
        if (why.empty()) {
          w.found.sym = sym;
        } else if (w.found.why_not.empty()) {
          w.found.why_not = std::move(why);
        }
      }
    }
    auto reason = [](const Lookup& l) { return l.why_not.empty() ? "" : " (" + l.why_not + ")"; };
    if (!wanted[0].found.sym) {
      return Invalid("does not export faas_handle" + reason(wanted[0].found) +
                     ": define int faas_handle(const faas_request*, faas_response*)");
    }
    if (!wanted[1].found.sym) {
      return Invalid("does not export faas_abi_version" + reason(wanted[1].found) +
                     ": add FAAS_FUNCTION_ABI (sdk/include/faas/function.h)");
    }
    info_.has_init = wanted[2].found.sym.has_value();
    FAAS_ASSIGN_OR_RETURN(info_.abi_version, ReadAbiVersion(*wanted[1].found.sym));
    if (info_.abi_version != kSupportedAbiVersion) {
      return Invalid("built for faas ABI " + std::to_string(info_.abi_version) +
                     ", this platform supports ABI " + std::to_string(kSupportedAbiVersion) +
                     "; rebuild against the current sdk");
    }
    return faas::OkStatus();
  }

  faas::Result<uint32_t> ReadAbiVersion(const Elf64_Sym& sym) const {
    if (sym.st_size != sizeof(uint32_t)) {
      return Invalid("faas_abi_version must be a 4-byte uint32_t, it is " +
                     std::to_string(sym.st_size) + " bytes; use FAAS_FUNCTION_ABI");
    }
    if (sym.st_shndx == SHN_ABS || sym.st_shndx == SHN_COMMON) {
      return Invalid("faas_abi_version is not initialised data; use FAAS_FUNCTION_ABI");
    }
    if (sym.st_shndx < SHN_LORESERVE) {
      std::optional<Elf64_Shdr> sh = Section(sym.st_shndx);
      if (sh && sh->sh_type == SHT_NOBITS) {
        return Invalid(
            "faas_abi_version is zero-initialised (.bss), so it has no value in the "
            "file; use FAAS_FUNCTION_ABI");
      }
    }
    std::optional<uint64_t> off = VaddrToOffset(sym.st_value, sizeof(uint32_t));
    if (!off) {
      return Invalid(
          "faas_abi_version has no bytes in the file (address outside every loaded "
          "segment's file data)");
    }
    return *Read<uint32_t>(*off);
  }

  std::string_view in_;
  Elf64_Ehdr ehdr_{};
  std::vector<Segment> segments_;
  Range dynamic_;
  uint64_t section_count_ = 0;
  std::vector<uint64_t> needed_offsets_;
  std::optional<uint64_t> dt_strtab_, dt_strsz_, dt_symtab_, dt_syment_, dt_hash_, dt_gnu_hash_;
  std::optional<Range> dynstr_;
  Range symtab_;  // off, entry count
  Range symstr_;
  ElfInfo info_;
};

}  // namespace

const std::vector<std::string>& AllowedNeededLibraries() {
  static const std::vector<std::string> allowed = {
      "libc.so.6",  "libm.so.6",  "libstdc++.so.6",       "libgcc_s.so.1",        "libpthread.so.0",
      "libdl.so.2", "librt.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"};
  return allowed;
}

faas::Result<ElfInfo> CheckFunctionElf(std::string_view bytes) {
  if (bytes.size() > kMaxLibraryBytes) {
    return faas::ResourceExhaustedError("library is " + std::to_string(bytes.size()) +
                                        " bytes, above the " +
                                        std::to_string(kMaxLibraryBytes >> 20) + " MiB limit");
  }
  return Reader(bytes).Run();
}

}  // namespace faas::store
