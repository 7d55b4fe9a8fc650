// CUDA-on-CPU emulator: switching between the fibers of a block (used by emu_scheduler.h).
//
// Why not plain ucontext: glibc's swapcontext saves and restores the signal mask, one rt_sigprocmask system call
// per switch. A block switches at every barrier and warp operation of every thread, so the emulated model tests
// made ~16 million of those calls (half their run time was system time). On x86-64 we switch with a few
// instructions instead: push the callee-saved registers (SysV ABI: rbx, rbp, r12-r15) and the SSE/x87 control
// words on the old stack, store its stack pointer, load the new one, pop. Everything else is caller-saved, so the
// compiler already treats a call of the switch like any opaque call. Fibers never migrate between OS threads,
// so thread-locals stay valid.
//
// ucontext remains the path on other architectures and under AddressSanitizer (ASan intercepts swapcontext to
// follow stack switches; it would report false positives on a switch it cannot see). CUDAEMU_UCONTEXT=1 at
// compile time forces it (to compare the two).
#pragma once
#include <cstddef>
#include <cstdint>

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(CUDAEMU_UCONTEXT)
#define CUDAEMU_FAST_SWITCH 1
#else
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#endif

namespace cudaemu {

#ifdef CUDAEMU_FAST_SWITCH

extern "C" void cudaemu_ctx_switch(void** save_sp, void* load_sp);
extern "C" void cudaemu_ctx_entry();

// The switch and the first-entry trampoline, in a COMDAT group so that every translation unit that includes this
// header may emit them and the linker keeps one copy. Frame layout at a saved stack pointer, low to high:
// [mxcsr, x87 cw][r15][r14][r13][r12][rbx][rbp][return address].
asm(R"(
  .pushsection .text.cudaemu_ctx_switch,"axG",@progbits,cudaemu_ctx_switch,comdat
  .weak cudaemu_ctx_switch
  .hidden cudaemu_ctx_switch
  .type cudaemu_ctx_switch,@function
cudaemu_ctx_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cudaemu_ctx_switch, .-cudaemu_ctx_switch
  .weak cudaemu_ctx_entry
  .hidden cudaemu_ctx_entry
  .type cudaemu_ctx_entry,@function
cudaemu_ctx_entry:
  call *%r13
  ud2
  .size cudaemu_ctx_entry, .-cudaemu_ctx_entry
  .popsection
)");

// A fiber's (or the scheduler's) saved stack pointer.
struct FiberContext {
  void* sp = nullptr;
};

// Prepares `c` to start `entry` on the stack [stack, stack + bytes) at its first switch. `entry` must not return:
// it ends by switching away for good (emu_scheduler.h's fiber_main does).
inline void fiber_context_init(FiberContext& c, unsigned char* stack, size_t bytes, void (*entry)()) {
  // At the trampoline the stack pointer is 16-byte aligned, so its `call` enters `entry` as the ABI expects.
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t(15);
  uint64_t* ret_slot = reinterpret_cast<uint64_t*>(top - 16 - 8);
  uint64_t* frame = ret_slot - 7;  // control words, r15, r14, r13, r12, rbx, rbp
  uint32_t mxcsr = 0;
  uint16_t fpucw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  frame[0] = uint64_t(mxcsr) | (uint64_t(fpucw) << 32);
  frame[1] = frame[2] = 0;                            // r15, r14
  frame[3] = reinterpret_cast<uint64_t>(entry);       // r13: called by the trampoline
  frame[4] = frame[5] = frame[6] = 0;                 // r12, rbx, rbp
  *ret_slot = reinterpret_cast<uint64_t>(&cudaemu_ctx_entry);
  c.sp = frame;
}

// Saves the running context into `from` and resumes `to`.
inline void fiber_switch(FiberContext& from, FiberContext& to) { cudaemu_ctx_switch(&from.sp, to.sp); }

#else  // ucontext

[[noreturn]] inline void context_failure(const char* call) {
  std::fprintf(stderr, "cuda_emu: %s failed\n", call);
  std::abort();
}

struct FiberContext {
  ucontext_t uc;
};

inline void fiber_context_init(FiberContext& c, unsigned char* stack, size_t bytes, void (*entry)()) {
  if (getcontext(&c.uc) != 0) context_failure("getcontext");
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;  // entry never returns
  makecontext(&c.uc, entry, 0);
}

inline void fiber_switch(FiberContext& from, FiberContext& to) {
  if (swapcontext(&from.uc, &to.uc) != 0) context_failure("swapcontext");
}

#endif

}  // namespace cudaemu
