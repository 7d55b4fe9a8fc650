// Emulator self-tests: runs fn in a forked child (stderr silenced) and reports whether the emulator aborted it -
// how the tests check that a kernel bug the GPU would fault on (or race silently on) stops the emulator.
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

namespace vr::test {

template <class F>
bool aborts(F fn) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    if (!std::freopen("/dev/null", "w", stderr)) _exit(3);
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

}  // namespace vr::test
