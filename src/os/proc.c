/*
 * proc.c -- the resident set from /proc/self/statm: "size resident shared
 * text lib data dt" in pages, where shared counts the resident pages that
 * files (or shared memory, which the engine does not use) back.  A read
 * costs a few microseconds: the kernel keeps these counts, it does not
 * walk the page tables for them.
 */
#include "os/proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "deltamemory.h"

int proc_resident(uint64_t *total, uint64_t *file)
{
    unsigned long long size = 0, res = 0, shared = 0;
    char text[128];
    int rc = DM_EIO;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof text - 1);
        if (n > 0) {
            text[n] = '\0';
            if (sscanf(text, "%llu %llu %llu", &size, &res, &shared) == 3 && shared <= res)
                rc = DM_OK;
        }
        close(fd);
    }
    if (rc)
        res = shared = 0;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (total)
        *total = (uint64_t)res * page;
    if (file)
        *file = (uint64_t)shared * page;
    return rc;
}
