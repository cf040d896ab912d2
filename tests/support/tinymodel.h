/*
 * tinymodel.h -- a tiny deterministic embedding model for the engine tests.
 *
 * The real model is a 34 MB file that tests must not depend on.  This one
 * has a vocabulary of about 380 common English words: 20 topics of 16
 * content words each (food, pets, travel, ...) and a list of function
 * words.  A content word's vector is its topic's direction plus a little
 * deterministic noise, so words of one topic are close (cosine about 0.9)
 * and words of different topics are not (about 0 +- 0.25).  Function words
 * get pure noise and a small weight, so a sentence vector is dominated by
 * the topics of its content words.  Name, dimension and seed fully decide
 * the file's bytes.
 *
 * Test programs pass the returned path as dm_options.model_path.
 */
#ifndef DM_TINYMODEL_H
#define DM_TINYMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "deltamemory.h"
#include "testutil.h"

#define TM_N_TOPICS 20
#define TM_TOPIC_WORDS 16
#define TM_DEFAULT_NAME "tiny-test"
#define TM_DEFAULT_DIM 32u
#define TM_DEFAULT_SEED 1u

/*
 * tm_build -- write the model (name, dim, seed) to path.  dim 8..4096.
 * Returns DM_OK or the model writer's error (dm_errmsg-style detail in
 * err_last_msg()).
 */
int tm_build(const char *path, const char *name, uint32_t dim, uint64_t seed);

/*
 * tm_model -- the path of the model (name, dim, seed), built on first use
 * in a scratch directory of this process ($DM_TEST_TMPDIR/tinymodel.<pid>,
 * removed by nobody: it is small and lives with the test's other files).
 * The returned string stays valid for the life of the process.  Aborts on
 * failure (a test cannot go on without its model).  Thread-safe.
 */
const char *tm_model(const char *name, uint32_t dim, uint64_t seed);

/* tm_default_model -- tm_model(TM_DEFAULT_NAME, TM_DEFAULT_DIM, TM_DEFAULT_SEED). */
const char *tm_default_model(void);

/* The model's name as the engine reports it: "builtin:" + name. */
#define TM_ENGINE_NAME(name) "builtin:" name

/* Topic vocabulary.  topic < TM_N_TOPICS, i < TM_TOPIC_WORDS. */
const char *tm_topic_name(unsigned topic);
const char *tm_topic_word(unsigned topic, unsigned i);
/* tm_word_topic -- the topic of a content word; -1 for function words and
 * unknown words. */
int tm_word_topic(const char *word);

/*
 * tm_sentence -- a sentence of n_words distinct content words of one topic,
 * chosen with r, joined by function words ("my dog and the puppy ...").
 * Writes at most cap bytes including the NUL; returns the length.
 */
size_t tm_sentence(tu_rng *r, unsigned topic, unsigned n_words, char *out,
                   size_t cap);

/*
 * tm_options -- dm_options_init, then the default tiny model, no fsync
 * (tests of logic, not durability) and a small memtable so that flushes
 * happen in short tests.
 */
void tm_options(dm_options *o);

/* assert_rc -- fail the test unless expr (a dm_* call) returns want,
 * naming both codes and the engine's message. */
#define assert_rc(expr, want)                                                  \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != (want))                                                     \
            fail_msg("%s: got %s, want %s (errmsg: %s)", #expr,                \
                     dm_errname(rc_), dm_errname(want), dm_errmsg());          \
    } while (0)

#endif
