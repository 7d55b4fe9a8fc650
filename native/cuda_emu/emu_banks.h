// CUDA-on-CPU emulator, part 4: shared-memory bank-conflict accounting (opt-in; off by default and then one relaxed
// atomic load per modelled op). Included by emu_scheduler.h; knows nothing of blocks or fibers: the scheduler tells
// it where launches, blocks and barriers begin and end, the modelled ops (mma.cuh, through emu_device.h's
// record_shared_access) tell it which lane touched which shared-memory address.
//
// What is counted: the shared-memory side of every warp-level instruction the emulator models or intercepts -
//   cp.async 16 (the shared-memory write of mma::cp_async16), ldmatrix x4 (.trans) (the 8 row addresses of each
//   8 x 8 matrix), and the aligned moves of mma.cuh when their address is shared memory: 16-byte loads / stores
//   (mma::load16 / store16, also as float4), 4-byte loads (mma::ld_pair) and 2-byte stores (mma::store_b16). NOT counted: plain C++ loads and stores to
//   shared memory (tile[i][j] = x: the emulator cannot see them), wgmma's shared-memory operand reads (the
//   hardware's read pattern is not documented), and anything that is not shared memory.
//
// The rule (CUDA C++ Programming Guide, "Shared Memory" of compute capability 5.x and later, which sm_80 / sm_90
// keep: 32 banks of 4 bytes, successive 32-bit words in successive banks; a request whose lanes touch DISTINCT
// 32-bit words in one bank is split into that many conflict-free passes; lanes reading the same word are served by
// one broadcast; narrower accesses take one word each, lanes writing parts of one word do not conflict). Accesses
// wider than 4 bytes are served in phases of 128 bytes: 8-byte accesses in half-warps
// (lanes 0-15, 16-31), 16-byte accesses in quarter-warps (lanes 0-7, 8-15, ...). The phase split is not in the
// guide: it is what Nsight Compute's "ideal wavefronts" of LDS.64 / LDS.128 (2 / 4 per full warp) and NVIDIA's
// forum answers describe; whether hardware ever merges two phases that are together conflict-free (e.g. 8-byte
// broadcasts) is not documented - we never merge. So per phase: wavefronts = the largest number of distinct 32-bit
// words that the phase's lanes touch in one bank (a 16-byte access touches 4 consecutive words), ideal = 1 for a
// phase with an active lane; an instruction's wavefronts / ideal are the sums over its phases, its degree the worst
// phase. ldmatrix: each 8 x 8 matrix is one phase of 8 row addresses of 16 bytes (lanes 8m .. 8m + 7 give matrix
// m's rows), i.e. the 16-byte rule; cp.async 16 is taken to write shared memory by the 16-byte rule too (Nsight
// reports LDGSTS bank conflicts; its phases are our assumption). Banks are computed from the emulator's host
// addresses: a common shift of all lanes' addresses by a multiple of 4 bytes only renames banks, so the counts equal
// the GPU's as long as one instruction's lanes address one shared array (true of every kernel here).
//
// Instructions: ldmatrix is warp-synchronous in the model (all 32 addresses known at once). The other ops are
// issued lane by lane (fibers); a warp's k-th op of one kind from each lane forms one instruction (lanes issue in
// program order). An instruction is evaluated when every lane of the warp that has not exited issued it, or, for
// divergent code (a loop's last partial trip), at the next __syncthreads / bar.sync releasing the warp or at the
// block's end, where the per-lane sequence numbers restart (the warp has reconverged); such instructions are counted
// as `partial`. Not handled: lanes of a warp that skip an op in different loop trips before a barrier (the k-th op
// of lane a then pairs with the k-th op of lane b from another trip, e.g. gemm.cu's edge tiles, where some lanes
// take the element path in one trip and others in the next). Their figures are approximate (they appear among the
// partial ones); the conflict tests use shapes without such divergence.
//
// Use: cudaemu::banks::Recorder (tests: totals per kernel while it lives), or CUDAEMU_BANKS=1 (every launch with a
// counted op prints one summary line per op kind to stderr when its grid ends).
#pragma once
#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cudaemu::banks {

enum class Op : uint8_t { CpAsync16, Ldmatrix, Load16, Store16, Load4, Store2 };
constexpr int kOps = 6;
inline const char* op_name(Op o) {
  static const char* const names[kOps] = {"cp.async16", "ldmatrix", "ld.shared.v4 (load16)", "st.shared.v4 (store16)",
                                          "ld.shared.b32 (ld_pair)", "st.shared.b16 (store_b16)"};
  return names[int(o)];
}
inline int op_bytes(Op o) { return o == Op::Load4 ? 4 : o == Op::Store2 ? 2 : 16; }

// One instruction's cost: wavefronts, ideal wavefronts, the worst phase (its wavefronts and its lanes' offsets).
struct Cost {
  int wavefronts = 0, ideal = 0, worst = 0, worst_phase = -1;
};

// The rule above for one instruction: lanes in `mask` access `bytes` (1, 2, 4, 8 or 16; the access aligned to its
// size) at byte address addr[lane]. Accesses narrower than a word take one 32-lane phase, one word each.
inline Cost evaluate(const uint64_t (&addr)[32], unsigned mask, int bytes) {
  Cost c;
  const int per_phase = bytes >= 4 ? 128 / bytes : 32, words = bytes >= 4 ? bytes / 4 : 1;
  for (int ph = 0; ph < 32 / per_phase; ph++) {
    uint64_t touched[32];  // (bank, word) keys: a phase touches at most 32 words
    int n = 0;
    for (int l = ph * per_phase; l < (ph + 1) * per_phase; l++) {
      if (!(mask >> l & 1u)) continue;
      for (int w = 0; w < words; w++) {
        const uint64_t word = addr[l] / 4 + uint64_t(w);
        touched[n++] = (word % 32) << 58 | (word & ((uint64_t(1) << 58) - 1));
      }
    }
    if (n == 0) continue;
    std::sort(touched, touched + n);
    n = int(std::unique(touched, touched + n) - touched);
    int most = 0;
    for (int i = 0, run = 0; i < n; i++) {
      run = i > 0 && touched[i] >> 58 == touched[i - 1] >> 58 ? run + 1 : 1;
      most = std::max(most, run);
    }
    c.wavefronts += most;
    c.ideal += 1;
    if (most > c.worst) c.worst = most, c.worst_phase = ph;
  }
  return c;
}

// Totals of one op kind.
struct OpTotals {
  uint64_t instructions = 0, wavefronts = 0, ideal = 0, conflicted = 0;  // conflicted: instructions over ideal
  uint64_t partial = 0;  // evaluated at a barrier without every live lane: divergent code, pairing approximate
  int worst = 0;              // the most wavefronts one phase took
  std::string worst_example;  // the first phase that took `worst`: warp, lanes and byte offsets
  void add(const OpTotals& o) {
    instructions += o.instructions, wavefronts += o.wavefronts, ideal += o.ideal, conflicted += o.conflicted;
    partial += o.partial;
    if (o.worst > worst) worst = o.worst, worst_example = o.worst_example;
  }
};

// Totals of one kernel (all its launches while a Recorder lived).
struct KernelTotals {
  const void* kernel = nullptr;
  std::string name;
  uint64_t launches = 0;
  OpTotals ops[kOps];
  uint64_t instructions() const {
    uint64_t n = 0;
    for (const OpTotals& o : ops) n += o.instructions;
    return n;
  }
  int worst() const {
    int w = 0;
    for (const OpTotals& o : ops) w = std::max(w, o.worst);
    return w;
  }
  Op worst_op() const {
    int best = 0;
    for (int i = 1; i < kOps; i++)
      if (ops[i].worst > ops[best].worst) best = i;
    return Op(best);
  }
};

// ---- kernel names: the function's symbol (static kernels are local symbols: read the file's .symtab) ---------
inline std::string short_name(const char* mangled) {
  int st = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &st);
  std::string s = st == 0 && d ? d : mangled;
  std::free(d);
  // "void ns::(anonymous namespace)::kernel<128, 1>(args)" -> "kernel<128, 1>"
  if (!s.empty() && s.back() == ')') {
    int depth = 0;
    for (size_t i = s.size(); i-- > 0;) {
      depth += s[i] == ')' ? 1 : s[i] == '(' ? -1 : 0;
      if (depth == 0) {
        s.resize(i);
        break;
      }
    }
  }
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); i++) {
    depth += s[i] == '<' || s[i] == '(' ? 1 : s[i] == '>' || s[i] == ')' ? -1 : 0;
    if (depth == 0 && (s[i] == ' ' || (s[i] == ':' && i + 1 < s.size() && s[i + 1] == ':'))) start = i + 1;
  }
  if (start < s.size() && s[start] == ':') start++;
  return s.substr(start);
}

inline std::string symtab_name(const char* file, uintptr_t offset, uintptr_t absolute) {
  const int fd = open(file, O_RDONLY);
  if (fd < 0) return "";
  struct stat stt;
  std::string found;
  if (fstat(fd, &stt) == 0 && size_t(stt.st_size) > sizeof(Elf64_Ehdr)) {
    const size_t size = size_t(stt.st_size);
    void* m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      const auto* base = static_cast<const unsigned char*>(m);
      const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
      const uintptr_t want = eh->e_type == ET_EXEC ? absolute : offset;
      const bool ok = std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
                      eh->e_shoff + size_t(eh->e_shnum) * sizeof(Elf64_Shdr) <= size;
      const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + (ok ? eh->e_shoff : 0));
      for (int i = 0; ok && i < eh->e_shnum && found.empty(); i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
        const Elf64_Shdr& strs = sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > size || strs.sh_offset + strs.sh_size > size) continue;
        const auto* sym = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
        for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); k++) {
          if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || sym[k].st_name >= strs.sh_size) continue;
          if (want >= sym[k].st_value && want < sym[k].st_value + std::max<uint64_t>(sym[k].st_size, 1)) {
            found = short_name(reinterpret_cast<const char*>(base + strs.sh_offset + sym[k].st_name));
            break;
          }
        }
      }
      munmap(m, size);
    }
  }
  close(fd);
  return found;
}

inline std::string kernel_name(const void* kernel) {
  char fallback[40];
  std::snprintf(fallback, sizeof fallback, "kernel@%p", kernel);
  Dl_info info{};
  if (!kernel || !dladdr(kernel, &info)) return fallback;
  if (info.dli_sname && info.dli_saddr == kernel) return short_name(info.dli_sname);
  const uintptr_t a = reinterpret_cast<uintptr_t>(kernel), off = a - reinterpret_cast<uintptr_t>(info.dli_fbase);
  std::string n = info.dli_fname && *info.dli_fname ? symtab_name(info.dli_fname, off, a) : "";
  if (n.empty()) n = symtab_name("/proc/self/exe", off, a);
  return n.empty() ? fallback : n;
}

// ---- state ---------------------------------------------------------------------------------------------------
inline std::atomic<int> recorders{0};
inline bool print_launches() {  // CUDAEMU_BANKS=1
  static const bool on = [] {
    const char* e = std::getenv("CUDAEMU_BANKS");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  return on;
}
inline bool on() { return recorders.load(std::memory_order_relaxed) > 0 || print_launches(); }

// One launch's totals, merged into by every block at its end.
struct Launch {
  const void* kernel = nullptr;
  unsigned grid[3] = {}, block[3] = {};
  std::mutex m;
  OpTotals ops[kOps];
};
inline thread_local Launch* tl_launch = nullptr;  // the launch this OS thread runs blocks of (null: not counting)

// Per-OS-thread state of the running block (blocks run one at a time per OS thread).
struct Pending {
  uint64_t addr[32];
  unsigned mask = 0;
  bool done = false;
};
struct WarpOp {
  int seq[32] = {};
  int base = 0;  // sequence number of pending.front()
  std::deque<Pending> pending;
};
struct BlockState {
  std::vector<WarpOp> warps;  // [warp * kOps + op]
  OpTotals ops[kOps];
};
inline BlockState& block_state() {
  static thread_local BlockState s;
  return s;
}

inline void account(BlockState& s, Op op, int warp, const Pending& p, bool partial = false) {
  const Cost c = evaluate(p.addr, p.mask, op_bytes(op));
  OpTotals& t = s.ops[int(op)];
  t.instructions++, t.wavefronts += uint64_t(c.wavefronts), t.ideal += uint64_t(c.ideal);
  if (partial) t.partial++;
  if (c.wavefronts > c.ideal) t.conflicted++;
  if (c.worst > t.worst) {
    t.worst = c.worst;
    const int per = op_bytes(op) >= 4 ? 128 / op_bytes(op) : 32, l0 = c.worst_phase * per;
    uint64_t lo = ~uint64_t(0);
    for (int l = l0; l < l0 + per; l++)
      if (p.mask >> l & 1u) lo = std::min(lo, p.addr[l]);
    char buf[64];
    std::snprintf(buf, sizeof buf, "warp %d lanes %d-%d at byte offsets", warp, l0, l0 + per - 1);
    t.worst_example = buf;
    for (int l = l0; l < l0 + per; l++) {
      if (!(p.mask >> l & 1u)) continue;
      std::snprintf(buf, sizeof buf, " +%llu", static_cast<unsigned long long>(p.addr[l] - lo));
      t.worst_example += buf;
    }
  }
}

// ---- hooks: the scheduler -------------------------------------------------------------------------------------
inline Launch* launch_begin(const void* kernel, const unsigned (&grid)[3], const unsigned (&block)[3]) {
  Launch* L = new Launch;
  L->kernel = kernel;
  std::copy(grid, grid + 3, L->grid), std::copy(block, block + 3, L->block);
  return L;
}
inline void block_begin(int nwarps) {
  BlockState& s = block_state();
  s.warps.assign(size_t(nwarps) * kOps, WarpOp{});
  for (OpTotals& t : s.ops) t = OpTotals{};
}
// The warps in `warps` (bit w: warp w) have reconverged at a barrier: their divergent instructions are complete.
inline void flush(uint64_t warps) {
  BlockState& s = block_state();
  for (size_t i = 0; i < s.warps.size(); i++) {
    const int w = int(i / kOps);
    if (w >= 64 || !(warps >> w & 1u)) continue;
    WarpOp& wo = s.warps[i];
    for (const Pending& p : wo.pending)
      if (!p.done && p.mask) account(s, Op(i % kOps), w, p, true);
    wo.pending.clear();
    wo.base = 0;
    std::fill(wo.seq, wo.seq + 32, 0);
  }
}
inline void block_end() {
  flush(~uint64_t(0));
  Launch* L = tl_launch;
  BlockState& s = block_state();
  s.warps.clear();  // ops outside a counted block are ignored (lane_access)
  if (!L) return;
  std::lock_guard<std::mutex> g(L->m);
  for (int i = 0; i < kOps; i++) L->ops[i].add(s.ops[i]);
}

inline std::mutex& totals_mutex() {
  static std::mutex m;
  return m;
}
inline std::map<const void*, KernelTotals>& totals() {
  static std::map<const void*, KernelTotals> t;
  return t;
}
inline std::map<const void*, std::string>& names() {  // under totals_mutex
  static std::map<const void*, std::string> n;
  return n;
}
inline std::string cached_name(const void* k) {  // under totals_mutex
  auto it = names().find(k);
  if (it == names().end()) it = names().emplace(k, kernel_name(k)).first;
  return it->second;
}

inline void launch_end(Launch* L) {
  std::unique_ptr<Launch> own(L);
  bool any = false;
  for (const OpTotals& t : L->ops) any |= t.instructions > 0;
  std::lock_guard<std::mutex> g(totals_mutex());
  if (recorders.load() > 0) {
    KernelTotals& k = totals()[L->kernel];
    if (k.launches++ == 0) k.kernel = L->kernel, k.name = cached_name(L->kernel);
    for (int i = 0; i < kOps; i++) k.ops[i].add(L->ops[i]);
  }
  if (!print_launches() || !any) return;
  const std::string name = cached_name(L->kernel);
  for (int i = 0; i < kOps; i++) {
    const OpTotals& t = L->ops[i];
    if (t.instructions == 0) continue;
    std::fprintf(stderr,
                 "cuda_emu banks: %s grid %ux%ux%u block %u: %s %llu instructions, %llu wavefronts (ideal %llu), "
                 "%llu conflicted, %llu partial, worst %d-way%s%s\n",
                 name.c_str(), L->grid[0], L->grid[1], L->grid[2], L->block[0] * L->block[1] * L->block[2],
                 op_name(Op(i)), static_cast<unsigned long long>(t.instructions),
                 static_cast<unsigned long long>(t.wavefronts), static_cast<unsigned long long>(t.ideal),
                 static_cast<unsigned long long>(t.conflicted), static_cast<unsigned long long>(t.partial), t.worst,
                 t.worst > 1 ? ": " : "",
                 t.worst > 1 ? t.worst_example.c_str() : "");
  }
}

// ---- hooks: the modelled ops (through emu_device.h, which knows the calling lane) ------------------------------
// One lane's op of kind `op` at shared-memory address `addr`; `live`: the warp's lanes that have not exited.
inline void lane_access(Op op, int warp, int lane, unsigned live, uint64_t addr) {
  BlockState& s = block_state();
  if (size_t(warp + 1) * kOps > s.warps.size()) return;  // outside a counted launch
  WarpOp& wo = s.warps[size_t(warp) * kOps + size_t(op)];
  const size_t k = size_t(wo.seq[lane]++ - wo.base);
  while (wo.pending.size() <= k) wo.pending.emplace_back();
  Pending& p = wo.pending[k];
  p.addr[lane] = addr;
  p.mask |= 1u << lane;
  if ((p.mask & live) == live) {
    account(s, op, warp, p);
    p.done = true;
  }
  while (!wo.pending.empty() && wo.pending.front().done) wo.pending.pop_front(), wo.base++;
}
// A warp-synchronous op (ldmatrix): all lanes' addresses at once.
inline void warp_access(Op op, int warp, unsigned mask, const uint64_t (&addr)[32]) {
  BlockState& s = block_state();
  if (size_t(warp + 1) * kOps > s.warps.size()) return;
  Pending p;
  std::copy(addr, addr + 32, p.addr);
  p.mask = mask;
  account(s, op, warp, p);
}

// Totals per kernel of every launch while it lives (launches already running when it is made are not counted
// reliably). One at a time.
class Recorder {
 public:
  Recorder() {
    std::lock_guard<std::mutex> g(totals_mutex());
    totals().clear();
    recorders.fetch_add(1);
  }
  ~Recorder() { recorders.fetch_sub(1); }
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  std::vector<KernelTotals> kernels() const {
    std::lock_guard<std::mutex> g(totals_mutex());
    std::vector<KernelTotals> v;
    for (const auto& kv : totals()) v.push_back(kv.second);
    return v;
  }
};

}  // namespace cudaemu::banks
