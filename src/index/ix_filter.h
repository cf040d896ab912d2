/*
 * ix_filter.h -- the candidate filter shared by the indexes.
 *
 * An index search may be given a filter: a function called with a document
 * number that returns true to keep the document.  The engine uses it for
 * time ranges and states; it must be cheap and must not call back into the
 * index.
 */
#ifndef DM_INDEX_IX_FILTER_H
#define DM_INDEX_IX_FILTER_H

#include <stdbool.h>
#include <stdint.h>

typedef bool (*ix_filter_fn)(void *arg, uint32_t doc);

#endif
