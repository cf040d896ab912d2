/*
 * proc.h -- what the kernel counts of this process.
 */
#ifndef DM_OS_PROC_H
#define DM_OS_PROC_H

#include <stdint.h>

/*
 * proc_resident -- the process's resident set in bytes (*total) and the
 * part of it that files back (*file: mapped files and the program's code;
 * the rest is the heap and anonymous maps), as /proc/self/statm gives them.
 * Either pointer may be NULL.  Errors: DM_EIO where the file cannot be
 * read (both set to 0).  Thread-safe.
 */
int proc_resident(uint64_t *total, uint64_t *file);

#endif
