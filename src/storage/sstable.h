/*
 * sstable.h -- immutable sorted tables: builder, reader, block cache.
 *
 * An SSTable holds internal keys (ikey.h) in ikey_cmp order: checksummed
 * data blocks with prefix-compressed keys and restart points (optionally
 * LZ4- or zstd-compressed per block), a bloom filter over user keys, an
 * index block, and a fixed footer with magic and version (format:
 * docs/format.md "SSTable").
 *
 * Readers are reference-counted and immutable, so any number of threads
 * may use one reader (gets and iterators) at once.  Bytes read from disk
 * are verified before use; damage is DM_ECORRUPT with a message
 * (err_last_msg) naming the file, the offset and what is wrong.
 */
#ifndef DM_STORAGE_SSTABLE_H
#define DM_STORAGE_SSTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "os/vfs.h"
#include "storage/iter.h"
#include "storage/sstable_format.h"

typedef struct sst_options {
    size_t block_size;       /* target uncompressed data block size; 4096 */
    int restart_interval;    /* keys between restart points; 16 */
    int compression;         /* enum sst_compression */
    int zstd_level;          /* for SST_COMP_ZSTD; 3 */
    int lz4_hc_level;        /* for SST_COMP_LZ4: 0 = the fast compressor,
                                1..12 = LZ4 HC at that level (denser, slower
                                to write, the same format and the same
                                decompression speed); 0 */
    int bloom_bits_per_key;  /* 0 = no filter; 10 */
    int min_saving_div;      /* a data block is stored compressed only when
                                that saves at least 1/min_saving_div of its
                                size (1..64); otherwise it is stored as it
                                is and read in place from the mapped file,
                                with no decoding and no block cache copy; 8 */
} sst_options;

/* sst_options_default -- the values in the comments above. */
sst_options sst_options_default(void);

/* ---------------------------------------------------------------- builder */

typedef struct sst_builder sst_builder;

/* What a finished table holds.  smallest/largest are owned by the struct;
 * release with sst_info_fini. */
typedef struct sst_info {
    uint64_t file_size;
    uint64_t n_entries;
    buf smallest; /* first internal key */
    buf largest;  /* last internal key */
} sst_info;
void sst_info_fini(sst_info *info);

/* sst_builder_open -- creates the file (truncating) and writes its header.
 * Errors: DM_EIO, DM_ENOSPC, DM_ENOMEM. */
int sst_builder_open(vfs *v, const char *path, const sst_options *opt,
                     sst_builder **out);
/* sst_builder_add -- appends an entry.  REQUIRES: ikey strictly greater
 * (ikey_cmp) than the previous one.  Errors as for open. */
int sst_builder_add(sst_builder *b, buf_slice ikey, buf_slice value);
/* Bytes written so far (approximate until finish) and entries added. */
uint64_t sst_builder_size(const sst_builder *b);
uint64_t sst_builder_entries(const sst_builder *b);
/* sst_builder_finish -- writes the filter, index and footer, syncs and
 * closes the file, fills *info, and frees the builder (always, even on
 * error). */
int sst_builder_finish(sst_builder *b, sst_info *info);
/* sst_builder_abandon -- closes and frees without finishing; the caller
 * removes the file.  NULL does nothing. */
void sst_builder_abandon(sst_builder *b);

/* ------------------------------------------------------------ block cache */

typedef struct sst_cache sst_cache;
/* sst_cache_new -- an LRU cache of decoded blocks holding up to capacity
 * bytes, sharded to keep lock contention low.  Thread-safe. */
int sst_cache_new(size_t capacity, sst_cache **out);
void sst_cache_free(sst_cache *c); /* REQUIRES: no reader uses it any more */
size_t sst_cache_usage(const sst_cache *c);
/* sst_cache_lookups -- lookups since the cache was made that found their
 * block (*hits) and that did not (*misses).  Thread-safe. */
void sst_cache_lookups(const sst_cache *c, uint64_t *hits, uint64_t *misses);

/* ----------------------------------------------------------------- reader */

typedef struct sst_reader sst_reader;

/*
 * sst_reader_open -- opens the table at path, verifying the footer, index
 * block and filter.  file_number identifies the table in the cache.  cache
 * may be NULL (no caching).  Returns one reference.  Errors: DM_ENOTFOUND,
 * DM_EIO, DM_ECORRUPT, DM_EVERSION, DM_ENOMEM.
 */
int sst_reader_open(vfs *v, const char *path, uint64_t file_number,
                    sst_cache *cache, sst_reader **out);
/* sst_reader_open_ex -- the same, with flags: SST_OPEN_PREAD reads every
 * block with pread (into the block cache, when there is one) instead of
 * mapping the file, so that the process's resident set holds no pages of
 * the table (the kernel's page cache still may). */
#define SST_OPEN_PREAD 0x1
int sst_reader_open_ex(vfs *v, const char *path, uint64_t file_number,
                       sst_cache *cache, unsigned flags, sst_reader **out);
void sst_reader_ref(sst_reader *r);
void sst_reader_unref(sst_reader *r); /* NULL does nothing */

enum sst_get_result { SST_NONE = 0, SST_FOUND = 1, SST_DELETED = 2 };
/*
 * sst_reader_get -- the newest entry for user key with seq <= snap_seq.
 * On SST_FOUND the value is copied into *value (cleared first).  Returns
 * DM_OK with *result set, or DM_ECORRUPT / DM_EIO / DM_ENOMEM.
 */
int sst_reader_get(sst_reader *r, buf_slice user_key, uint64_t snap_seq,
                   buf *value, enum sst_get_result *result);

/*
 * sst_pins -- cached blocks that one thread keeps referenced across point
 * lookups, so that a burst of gets within a few blocks (a search reading
 * one user's records) goes to the shared block cache, and takes its
 * locks, once per block instead of once per get.  Up to SST_PINS blocks,
 * the oldest let go first.  Start zeroed (SST_PINS_INIT); one owner, no
 * locking; sst_pins_release drops every block (the pins can be reused
 * after).  Pins keep blocks out of eviction, so hold them briefly.
 */
#define SST_PINS 16
struct sst_cache_handle;
typedef struct sst_pins {
    struct sst_pin {
        uint64_t file, off;
        struct sst_cache_handle *h;
    } pin[SST_PINS];
    unsigned n, next; /* pins in use; the slot to let go of next when full */
} sst_pins;
#define SST_PINS_INIT { .n = 0 }
void sst_pins_release(sst_pins *p);

/*
 * sst_reader_get_pinned -- sst_reader_get, looking in *pins first and
 * keeping the blocks it loads from the cache there.  pins may be NULL.
 */
int sst_reader_get_pinned(sst_reader *r, sst_pins *pins, buf_slice user_key,
                          uint64_t snap_seq, buf *value, enum sst_get_result *result);

/* sst_iter_new -- internal-key iterator over the table; holds a reference
 * on the reader until freed.  NULL when out of memory. */
iter *sst_iter_new(sst_reader *r);

uint64_t sst_reader_entries(const sst_reader *r);
uint64_t sst_reader_file_size(const sst_reader *r);

/* sst_reader_memsize -- bytes the open reader holds from dm_malloc: its
 * decoded index (with each block's check state), a filter read out of the
 * file and its zstd context pool's array (the contexts themselves come
 * from zstd's own malloc and are not counted).  Thread-safe. */
uint64_t sst_reader_memsize(sst_reader *r);

/*
 * Mapped pages.  A reader given a page clock (a counter its owner advances,
 * about once a second; never 0) notes in each data block's index entry the
 * clock's value when the block's mapped bytes were last read: a block
 * stored uncompressed read in place, a compressed one decoded from the
 * mapping (not one found in the block cache).  That tells which pages are
 * in use, so that the others can be given back to the kernel.
 */
#define SST_AGE_BUCKETS 17 /* ages 0, 1, 2-3, 4-7, ..., 2^15 and more */

/* sst_reader_set_page_clock -- clock: the owner's counter, read relaxed;
 * it must outlive the reader.  Call before the reader is shared. */
void sst_reader_set_page_clock(sst_reader *r, const _Atomic uint16_t *clock);

/* sst_reader_page_ages -- adds to bytes[b] the stored bytes of the blocks
 * whose mapped bytes were last read at an age (clock now - clock then) in
 * bucket b: 0 for age 0, 1 + floor(log2(age)) otherwise.  Blocks not read
 * since open or since their pages were dropped are not counted.  Nothing
 * without a mapping or a clock.  Thread-safe. */
void sst_reader_page_ages(sst_reader *r, uint64_t bytes[SST_AGE_BUCKETS]);

/* sst_reader_drop_pages -- gives back to the kernel (vfs->drop_pages) the
 * whole pages of the runs of data blocks not read at an age below
 * from_bucket's (0: all), with the blocks not known to be mapped inside
 * those runs; they count as not read since.  A run of blocks not known to
 * be mapped alone is left (unless from_bucket is 0).  Without a clock, the whole mapping.  Readers go on reading, and
 * a page read again is mapped again from the file.  Does nothing for a
 * reader that reads with pread or a VFS without drop_pages.  Errors: what
 * the VFS returns (err_last_msg names the file).  Thread-safe, also while
 * other threads read the table. */
int sst_reader_drop_pages(sst_reader *r, unsigned from_bucket);

/* Called by sst_verify for each problem found. */
typedef void (*sst_damage_fn)(void *arg, const char *path, uint64_t off,
                              const char *reason);
/*
 * sst_verify -- reads every block of the file at path, checking every
 * checksum, the key order, and the footer/index/filter; reports each
 * problem through on_damage (may be NULL).  Returns DM_OK when clean,
 * DM_ECORRUPT when anything was damaged, DM_EIO/DM_ENOMEM otherwise.
 * Used by `deltamemory check`.
 */
int sst_verify(vfs *v, const char *path, sst_damage_fn on_damage, void *arg,
               uint64_t *n_entries);

#endif
