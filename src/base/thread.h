/*
 * thread.h -- the calling thread's CPU priority.
 *
 * Background work that can wait (flushes, compactions, the indexer's
 * links and refreshes) runs below the request threads, so that on a
 * machine with few cores its bursts do not stretch the requests' latency.
 * Linux applies nice values per thread (to the thread id, not the
 * process); raising one needs no privilege.  Thread-safe.
 */
#ifndef DM_BASE_THREAD_H
#define DM_BASE_THREAD_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Lower the calling thread's priority to nice value n (0..19).  False when
 * the system refused: the thread then keeps its priority. */
static inline bool thread_set_nice(int n)
{
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), n) == 0;
}

#endif
