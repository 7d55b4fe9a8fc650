// CUDA-on-CPU emulator, part 1: the block scheduler (see engineering.md §8).
//
// Every CUDA thread of a block is a fiber with its own stack (switched by emu_fiber_switch.h); all fibers of one block run on one OS
// thread, one at a time, switching only at barriers and warp operations. Blocks of a grid are spread over a
// few OS threads, so global-memory atomics between blocks are real races and must be real atomics.
//
// Barriers: __syncthreads() parks the fiber until every live fiber of the block is parked (exited threads
// count as arrived, as on Volta+). Warp operations (shuffles, votes, __syncwarp) are a per-warp barrier over
// the lanes named in the mask: each lane publishes a 64-bit value, the last lane to arrive copies the
// published values into every participant's snapshot, and everyone proceeds. If no fiber can run and no
// barrier can be released the block has deadlocked (e.g. a divergent __syncthreads): the emulator prints
// the state of every waiting thread and aborts, which is what a test wants to see.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <vector_types.h>

#include "emu_banks.h"
#include "emu_fiber_switch.h"

namespace cudaemu {

[[noreturn]] inline void die(const char* what, const char* detail = "") {
  std::fprintf(stderr, "cuda_emu: %s%s\n", what, detail);
  std::fflush(stderr);
  std::abort();
}

enum class FiberState : uint8_t { Ready, BlockWait, WarpWait, NamedWait, Done };

// Barrier ids 0..15 are the kernel's (bar.sync), 16.. the emulator's own (one per warpgroup of a 1024-thread block).
constexpr int kKernelNamedBarriers = 16, kNamedBarriers = kKernelNamedBarriers + 8;

struct Fiber {
  FiberContext ctx;
  uint3 tid;
  int lin = 0, lane = 0, warp = 0;  // linear thread index, lane in warp, warp in block
  FiberState st = FiberState::Ready;
  unsigned wmask = 0;               // mask of the pending warp operation
  int bar_id = -1;                  // the named barrier waited at (NamedWait)
  uint32_t named_in = 0;            // bit id: arrived (bar.sync or bar.arrive) in the barrier's current phase
  uint64_t pub = 0;                 // value published to the pending warp operation
  uint64_t snap[32];                // every participant's published value, copied at release
};

// Happens-before through barriers, for the wgmma model's check that shared memory landed by one thread is read by
// another only after a barrier phase that the lander arrived at (after landing) and the reader waited for. Off until
// the model records a landing in the block (hb_enable); then every kernel barrier (__syncthreads, bar.sync / bar.arrive
// ids 0..15) counts each thread's arrivals and, at a phase's completion, tells each thread that waited for it the
// arrival number of every thread that arrived in it. Direct only (a chain of two barriers through a third thread is
// not followed: a kernel relying on one would be a false report).
// The other direction (write after read) at cp.async ISSUE: a copy into a chunk that a wgmma still in flight reads
// (issued, not yet retired by its wait_group in every thread of its warpgroup), or that one read and retired with no
// barrier phase since that the retiring thread arrived at and the copying thread waited for, may land while the read
// is still going on the GPU - whenever the emulator lands it (CUDAEMU_CP_ASYNC late or early).
constexpr int kReadSlots = 8;  // warpgroups of a 1024-thread block: who read a chunk, per warpgroup
struct HappensBefore {
  bool on = false;
  int n = 0;
  std::vector<uint32_t> arrivals;                                  // per thread
  std::vector<uint32_t> seen;                                      // [reader * n + thread]: its arrivals reader saw
  std::vector<std::pair<int, uint32_t>> open[kKernelNamedBarriers + 1];  // arrivals of the open phase; last: block
  std::vector<int32_t> land_thread;                                // per 16-byte shared chunk: who landed it (-1)
  std::vector<uint32_t> land_arrival;                              // and its arrival count then
  std::vector<uint16_t> reads_in_flight;  // [chunk * kReadSlots + warpgroup]: wgmma reads not yet retired
  std::vector<int32_t> read_thread;       // ... the thread whose wait retired the last one (-1: none)
  std::vector<uint32_t> read_arrival;     // ... and its arrival count then
};

struct Block {
  uint3 idx;
  dim3 dim, grid;
  int nthreads = 0, live = 0, at_barrier = 0;
  std::vector<Fiber> fibers;
  Fiber* cur = nullptr;
  FiberContext sched;
  unsigned char* dyn_smem = nullptr;
  size_t dyn_smem_bytes = 0;
  uint64_t serial = 0;  // unique per block run (launches reuse block indices): per-thread model state keys on it
  int named_arrived[kNamedBarriers] = {}, named_count[kNamedBarriers] = {};
  const std::function<void()>* body = nullptr;
  HappensBefore hb;
};

inline thread_local Block* tl_block = nullptr;

inline Block& blk() {
  Block* b = tl_block;
  if (!b) die("device function called outside a kernel launch");
  return *b;
}
inline Fiber& cur() { return *blk().cur; }

// Fiber stacks with a guard page below each one (a stack overflow faults instead of corrupting a neighbour).
// One pool per OS thread, reused by every block that thread runs.
struct StackPool {
  size_t stack_bytes = 0, slot_bytes = 0, count = 0;
  unsigned char* base = nullptr;
  ~StackPool() {
    if (base) munmap(base, slot_bytes * count);
  }
  unsigned char* get(size_t i) { return base + i * slot_bytes + page(); }
  static size_t page() { return size_t(sysconf(_SC_PAGESIZE)); }
  void reserve(size_t n, size_t bytes) {
    if (n <= count && bytes == stack_bytes) return;
    if (base) munmap(base, slot_bytes * count);
    stack_bytes = bytes;
    slot_bytes = bytes + page();
    count = n;
    void* p = mmap(nullptr, slot_bytes * count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("cannot map fiber stacks");
    base = static_cast<unsigned char*>(p);
    for (size_t i = 0; i < count; i++) mprotect(base + i * slot_bytes, page(), PROT_NONE);
  }
};

// Pools outlive a launch: each worker of a launch borrows one and gives it back, so the stacks stay mapped, guarded
// and touched from one kernel launch to the next (doing that per launch cost ~300k mprotect calls and the first-touch
// page faults of every stack in the model tests).
class PoolLease {
 public:
  PoolLease() {
    std::lock_guard<std::mutex> g(mutex());
    auto& f = free_pools();
    if (f.empty()) {
      pool_ = std::make_unique<StackPool>();
    } else {
      pool_ = std::move(f.back());
      f.pop_back();
    }
  }
  ~PoolLease() {
    std::lock_guard<std::mutex> g(mutex());
    free_pools().push_back(std::move(pool_));
  }
  PoolLease(const PoolLease&) = delete;
  PoolLease& operator=(const PoolLease&) = delete;
  StackPool& operator*() { return *pool_; }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::unique_ptr<StackPool>>& free_pools() {
    static std::vector<std::unique_ptr<StackPool>> pools;
    return pools;
  }
  std::unique_ptr<StackPool> pool_;
};

inline size_t fiber_stack_bytes() {
  static const size_t bytes = [] {
    const char* e = std::getenv("CUDAEMU_STACK_KB");
    const long kb = e ? std::atol(e) : 64;
    return size_t(kb > 16 ? kb : 16) * 1024;
  }();
  return bytes;
}

// Switch from the current fiber back to the scheduler.
inline void yield() {
  Block& b = blk();
  Fiber* f = b.cur;
  asm volatile("" ::: "memory");
  fiber_switch(f->ctx, b.sched);
  asm volatile("" ::: "memory");
}

inline void hb_enable(Block& b) {
  HappensBefore& h = b.hb;
  if (h.on) return;
  h.on = true;
  h.n = b.nthreads;
  h.arrivals.assign(size_t(h.n), 0);
  h.seen.assign(size_t(h.n) * size_t(h.n), 0);
  for (auto& o : h.open) o.clear();
  h.land_thread.assign(b.dyn_smem_bytes / 16 + 1, -1);
  h.land_arrival.assign(b.dyn_smem_bytes / 16 + 1, 0);
  const size_t reads = (b.dyn_smem_bytes / 16 + 1) * kReadSlots;
  h.reads_in_flight.assign(reads, 0);
  h.read_thread.assign(reads, -1);
  h.read_arrival.assign(reads, 0);
}
inline void hb_arrive(Block& b, int slot, int lin) {
  if (b.hb.on) b.hb.open[slot].push_back({lin, ++b.hb.arrivals[size_t(lin)]});
}
inline void hb_complete(Block& b, int slot, const Fiber& reader) {
  HappensBefore& h = b.hb;
  if (!h.on) return;
  uint32_t* row = h.seen.data() + size_t(reader.lin) * size_t(h.n);
  for (const auto& [t, a] : h.open[slot]) row[t] = std::max(row[t], a);
}
// Whether `reader` waited for a barrier phase that `lander` arrived at after landing shared chunk `off` (true when
// the chunk has no recorded landing, or reader is the lander: program order).
inline bool hb_published(const Block& b, uint32_t off, int reader) {
  const HappensBefore& h = b.hb;
  if (!h.on || off / 16 >= h.land_thread.size()) return true;
  const int t = h.land_thread[off / 16];
  return t < 0 || t == reader || h.seen[size_t(reader) * size_t(h.n) + size_t(t)] > h.land_arrival[off / 16];
}

// A wgmma of warpgroup `wg` issued a read of shared chunk `off` (hb on: the wgmma model turns it on).
inline void hb_read_issued(Block& b, uint32_t off, int wg) {
  HappensBefore& h = b.hb;
  if (h.on && off / 16 < h.land_thread.size()) h.reads_in_flight[size_t(off / 16) * kReadSlots + size_t(wg)]++;
}
// ... and thread `lin`, the last of the warpgroup to wait for it, retired it.
inline void hb_read_retired(Block& b, uint32_t off, int wg, int lin) {
  HappensBefore& h = b.hb;
  if (!h.on || off / 16 >= h.land_thread.size()) return;
  const size_t i = size_t(off / 16) * kReadSlots + size_t(wg);
  if (h.reads_in_flight[i] > 0) h.reads_in_flight[i]--;
  h.read_thread[i] = lin;
  h.read_arrival[i] = h.arrivals[size_t(lin)];
}
// Whether thread `writer` may issue a copy into shared chunk `off`: nullptr if so, else why not (a read still in
// flight, or retired by another thread with no barrier phase since that it arrived at and `writer` waited for; the
// writer's own retired reads are program order).
inline const char* hb_write_hazard(const Block& b, uint32_t off, int writer) {
  const HappensBefore& h = b.hb;
  if (!h.on || off / 16 >= h.land_thread.size()) return nullptr;
  for (int wg = 0; wg < kReadSlots; wg++) {
    const size_t i = size_t(off / 16) * kReadSlots + size_t(wg);
    if (h.reads_in_flight[i] > 0)
      return "a cp.async is issued into shared memory that a wgmma still in flight reads (before its wait_group in "
             "every thread of its warpgroup): a race on the GPU";
    const int r = h.read_thread[i];
    if (r >= 0 && r != writer && h.seen[size_t(writer) * size_t(h.n) + size_t(r)] <= h.read_arrival[i])
      return "a cp.async is issued into shared memory that a wgmma read, with no barrier phase since its wait_group "
             "that the reading warpgroup arrived at and the copying thread waited for (the buffer is released too "
             "early: a race on the GPU)";
  }
  return nullptr;
}

inline void release_block_barrier(Block& b) {
  for (Fiber& f : b.fibers)
    if (f.st == FiberState::BlockWait) hb_complete(b, kKernelNamedBarriers, f);
  if (b.hb.on) b.hb.open[kKernelNamedBarriers].clear();
  for (Fiber& f : b.fibers)
    if (f.st == FiberState::BlockWait) f.st = FiberState::Ready;
  b.at_barrier = 0;
  if (banks::tl_launch) banks::flush(~uint64_t(0));  // every warp reconverged here
}

inline void syncthreads() {
  Block& b = blk();
  b.cur->st = FiberState::BlockWait;
  hb_arrive(b, kKernelNamedBarriers, b.cur->lin);
  if (++b.at_barrier == b.live) {
    release_block_barrier(b);
    asm volatile("" ::: "memory");
  } else {
    yield();
  }
}

// The warp barrier under every warp operation: publishes `value`, waits for all lanes in `mask`, and returns
// the 32 values published to this operation (entries of lanes outside the mask are stale).
inline const uint64_t* warp_exchange(unsigned mask, uint64_t value) {
  Block& b = blk();
  Fiber* f = b.cur;
  if (!(mask >> f->lane & 1u)) die("warp operation whose mask does not name the calling lane");
  f->pub = value;
  f->wmask = mask;
  f->st = FiberState::WarpWait;
  const int base = f->warp * 32;
  bool all = true;
  for (int l = 0; l < 32 && all; l++) {
    if (!(mask >> l & 1u)) continue;
    if (base + l >= b.nthreads) die("warp mask names a lane beyond the block size");
    const Fiber& g = b.fibers[size_t(base + l)];
    all = g.st == FiberState::WarpWait && g.wmask == mask;
  }
  if (all) {
    for (int l = 0; l < 32; l++) {
      if (!(mask >> l & 1u)) continue;
      Fiber& g = b.fibers[size_t(base + l)];
      for (int s = 0; s < 32; s++)
        if (mask >> s & 1u) g.snap[s] = b.fibers[size_t(base + s)].pub;
      g.st = FiberState::Ready;
    }
    asm volatile("" ::: "memory");
  } else {
    yield();
  }
  return f->snap;
}

// Named barriers (bar.sync / bar.arrive id, count), PTX semantics: a phase of barrier `id` completes when `count`
// threads (a positive multiple of 32) have arrived, counting bar.sync and bar.arrive alike; only the bar.sync threads
// wait for it, a bar.arrive thread goes on at once (the producer side of a producer / consumer hand-off, FA3's
// ping-pong turns). Every thread naming the id in one phase must give the same count. Reported (abort), where a GPU
// is undefined or silently wrong: a count mismatch; a thread arriving twice in one phase (over-arrival: on the GPU
// it would complete the phase early, with a participant missing); a block ending with a phase partly arrived (an
// arrive without its syncs, run_block); syncs whose arrivals never come are a deadlock report.
inline void named_arrival(int id, int count, bool wait) {
  Block& b = blk();
  const char* op = wait ? "bar.sync" : "bar.arrive";
  if (id < 0 || id >= kNamedBarriers) die(op, ": barrier id out of range");
  if (count <= 0 || count % 32 != 0 || count > b.nthreads)
    die(op, ": the thread count must be a positive multiple of 32 not above the block size");
  if (b.named_count[id] != 0 && b.named_count[id] != count) die(op, ": threads disagree on a barrier's count");
  Fiber* f = b.cur;
  if (f->named_in >> id & 1u)
    die(op, ": a thread arrived twice at one barrier phase (over-arrival: an arrive or sync without its partner)");
  b.named_count[id] = count;
  f->named_in |= 1u << id;
  if (wait) f->st = FiberState::NamedWait, f->bar_id = id;
  const bool kernel_id = id < kKernelNamedBarriers;  // the emulator's own (wgmma collectives) publish nothing
  if (kernel_id) hb_arrive(b, id, f->lin);
  if (++b.named_arrived[id] == count) {
    uint64_t warps = 0;
    for (Fiber& g : b.fibers)
      if (kernel_id && g.st == FiberState::NamedWait && g.bar_id == id) hb_complete(b, id, g);
    if (kernel_id && b.hb.on) b.hb.open[id].clear();
    for (Fiber& g : b.fibers) {
      g.named_in &= ~(1u << id);
      if (g.st == FiberState::NamedWait && g.bar_id == id) g.st = FiberState::Ready, warps |= uint64_t(1) << g.warp;
    }
    if (banks::tl_launch && warps) banks::flush(warps);  // the released warps reconverged here
    b.named_arrived[id] = b.named_count[id] = 0;
    asm volatile("" ::: "memory");
  } else if (wait) {
    yield();
  }
}
// bar.sync id, count: arrives and waits for the phase to complete.
inline void named_barrier(int id, int count) { named_arrival(id, count, true); }
// bar.arrive id, count: arrives without waiting.
inline void named_arrive(int id, int count) { named_arrival(id, count, false); }

[[noreturn]] inline void report_deadlock(const Block& b) {
  std::fprintf(stderr, "cuda_emu: deadlock in block (%u,%u,%u) of a %ux%ux%u grid; %d live threads:\n", b.idx.x,
               b.idx.y, b.idx.z, b.grid.x, b.grid.y, b.grid.z, b.live);
  int shown = 0;
  for (const Fiber& f : b.fibers) {
    if (f.st == FiberState::Done || shown >= 16) continue;
    shown++;
    if (f.st == FiberState::BlockWait)
      std::fprintf(stderr, "  thread %d (warp %d lane %d) waits at __syncthreads\n", f.lin, f.warp, f.lane);
    else if (f.st == FiberState::NamedWait)
      std::fprintf(stderr, "  thread %d (warp %d lane %d) waits at bar.sync %d (%d of %d arrived)%s\n", f.lin, f.warp,
                   f.lane, f.bar_id % kKernelNamedBarriers, b.named_arrived[f.bar_id], b.named_count[f.bar_id],
                   f.bar_id >= kKernelNamedBarriers ? " of a warpgroup-collective op (wgmma)" : "");
    else
      std::fprintf(stderr, "  thread %d (warp %d lane %d) waits at a warp op, mask %08x\n", f.lin, f.warp, f.lane,
                   f.wmask);
  }
  die("a barrier can never be released (divergent __syncthreads or bar.sync, bar.arrive arrivals that never come, a "
      "warp mask naming an exited lane, or a warpgroup-collective op not reached by all 128 threads)");
}

// The order fibers of a block run in between scheduling points (CUDAEMU_SCHEDULE):
//   lockstep (default)  every ready thread once per round, in thread order: warps advance together, one warp op at
//                       a time - the fastest, and a legal GPU order;
//   warp-ahead          one warp runs until none of its lanes can go on (all at a __syncthreads or finished: its
//                       warp ops wait only on its own lanes), then the next: warp 0 gets as far ahead of warp 1 as a
//                       GPU would ever let it;
//   warp-behind         the same with the warps, and the lanes of each warp, in reverse order.
// All three are legal schedules, so a kernel's results must not depend on the choice: a missing __syncthreads
// between warps that write and read the same shared memory (or a cp.async buffer reused too early) that lockstep
// hides shows up as wrong values under warp-ahead / warp-behind. The emulator tests are run under all three.
enum class Schedule { Lockstep, WarpAhead, WarpBehind };
inline Schedule schedule() {
  static const Schedule s = [] {
    const char* e = std::getenv("CUDAEMU_SCHEDULE");
    if (!e || !*e || std::strcmp(e, "lockstep") == 0) return Schedule::Lockstep;
    if (std::strcmp(e, "warp-ahead") == 0) return Schedule::WarpAhead;
    if (std::strcmp(e, "warp-behind") == 0) return Schedule::WarpBehind;
    die("CUDAEMU_SCHEDULE is not one of lockstep, warp-ahead, warp-behind: ", e);
  }();
  return s;
}

inline void fiber_main() {
  Block& b = blk();
  (*b.body)();
  Fiber* f = b.cur;
  f->st = FiberState::Done;
  b.live--;
  if (b.at_barrier > 0 && b.at_barrier == b.live) release_block_barrier(b);
  fiber_switch(f->ctx, b.sched);  // for good: a finished fiber is never resumed
  die("a finished fiber was resumed");
}

inline void run_block(Block& b, StackPool& stacks) {
  const size_t n = size_t(b.nthreads);
  stacks.reserve(n, fiber_stack_bytes());
  b.fibers.resize(n);
  for (unsigned z = 0, i = 0; z < b.dim.z; z++)
    for (unsigned y = 0; y < b.dim.y; y++)
      for (unsigned x = 0; x < b.dim.x; x++, i++) {
        Fiber& f = b.fibers[i];
        f.tid = uint3{x, y, z};
        f.lin = int(i);
        f.lane = int(i % 32);
        f.warp = int(i / 32);
        f.st = FiberState::Ready;
        f.wmask = 0;
        f.named_in = 0;
        fiber_context_init(f.ctx, stacks.get(i), stacks.stack_bytes, fiber_main);
      }
  b.live = int(n);
  b.at_barrier = 0;
  b.hb.on = false;
  for (int i = 0; i < kNamedBarriers; i++) b.named_arrived[i] = b.named_count[i] = 0;
  tl_block = &b;
  if (banks::tl_launch) banks::block_begin(int((n + 31) / 32));
  const Schedule sched = schedule();
  const int nwarps = int((n + 31) / 32);
  while (b.live > 0) {
    bool ran = false;
    if (sched == Schedule::Lockstep) {
      for (Fiber& f : b.fibers) {
        if (f.st != FiberState::Ready) continue;
        b.cur = &f;
        fiber_switch(b.sched, f.ctx);
        ran = true;
      }
    } else {
      // One warp at a time, run until none of its lanes can go on, in warp order or reversed: warps drift as far
      // apart as CUDA allows.
      for (int wi = 0; wi < nwarps; wi++) {
        const int w = sched == Schedule::WarpAhead ? wi : nwarps - 1 - wi;
        const size_t lo = size_t(w) * 32, hi = std::min(n, lo + 32);
        for (bool again = true; again;) {
          again = false;
          for (size_t k = lo; k < hi; k++) {
            // warp-behind also reverses the lanes: a lane's segment between warp ops runs before lower lanes'
            // (a missing __syncwarp between lanes that share shared memory shows up one way or the other).
            Fiber& f = b.fibers[sched == Schedule::WarpAhead ? k : lo + hi - 1 - k];
            if (f.st != FiberState::Ready) continue;
            b.cur = &f;
            fiber_switch(b.sched, f.ctx);
            ran = again = true;
          }
        }
      }
    }
    if (!ran && b.live > 0) report_deadlock(b);
  }
  for (int i = 0; i < kNamedBarriers; i++)
    if (b.named_arrived[i] != 0) {
      std::fprintf(stderr, "cuda_emu: block (%u,%u,%u) ended with %d of %d arrivals at barrier %d\n", b.idx.x,
                   b.idx.y, b.idx.z, b.named_arrived[i], b.named_count[i], i);
      die("bar.arrive: a block ended with a barrier phase partly arrived (an arrive whose bar.sync never came)");
    }
  if (banks::tl_launch) banks::block_end();
  tl_block = nullptr;
}

inline int worker_threads(int64_t nblocks) {
  static const int configured = [] {
    const char* e = std::getenv("CUDAEMU_THREADS");
    if (e && std::atoi(e) > 0) return std::atoi(e);
    const unsigned hw = std::thread::hardware_concurrency();
    return int(hw == 0 ? 1 : hw > 8 ? 8 : hw);
  }();
  return int(nblocks < configured ? nblocks : configured);
}

// Runs `body` once per thread of every block of the grid. `kernel` names the launch in the bank-conflict accounting
// (emu_banks.h), which counts the grid when it is on.
inline void run_grid(dim3 grid, dim3 block, size_t dyn_smem_bytes, const std::function<void()>& body,
                     const void* kernel = nullptr) {
  const int64_t nblocks = int64_t(grid.x) * grid.y * grid.z;
  std::atomic<int64_t> next{0};
  banks::Launch* const counted = banks::on() ? banks::launch_begin(kernel, {grid.x, grid.y, grid.z},
                                                                   {block.x, block.y, block.z})
                                             : nullptr;
  auto worker = [&] {
    banks::tl_launch = counted;
    PoolLease lease;
    StackPool& stacks = *lease;
    std::vector<unsigned char> smem(dyn_smem_bytes + 16);
    Block b;
    b.dim = block;
    b.grid = grid;
    b.nthreads = int(block.x * block.y * block.z);
    b.body = &body;
    b.dyn_smem = smem.data();
    b.dyn_smem_bytes = dyn_smem_bytes;
    for (int64_t i; (i = next.fetch_add(1)) < nblocks;) {
      b.idx = uint3{unsigned(i % grid.x), unsigned(i / grid.x % grid.y), unsigned(i / (int64_t(grid.x) * grid.y))};
      std::memset(smem.data(), 0xA5, smem.size());  // uninitialised on a GPU too: make reliance on zero visible
      static std::atomic<uint64_t> serials{0};
      b.serial = ++serials;
      run_block(b, stacks);
    }
    banks::tl_launch = nullptr;
  };
  const int nw = worker_threads(nblocks);
  std::vector<std::thread> extra;
  for (int w = 1; w < nw; w++) extra.emplace_back(worker);
  worker();
  for (auto& t : extra) t.join();
  if (counted) banks::launch_end(counted);
}

}  // namespace cudaemu
