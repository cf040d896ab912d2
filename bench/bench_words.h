/*
 * bench_words.h -- the generated English of the engine benchmarks
 * (bench_engine, bench_retrieval): word lists and a sentence generator
 * ("Ann cooked a sushi dinner near the beach last weekend."), so that both
 * store the same kind of text.  Header-only, like bench_util.h.
 */
#ifndef DM_BENCH_WORDS_H
#define DM_BENCH_WORDS_H

#include <stdio.h>

#include "bench_util.h"

static const char *const names[] = { "Ann", "Bob", "Carla", "Dev", "Emma", "Farid", "Grace",
                                     "Hiro", "Ines", "Jon", "Kemal", "Lena", "Mia", "Noah" };
static const char *const verbs[] = { "visited", "cooked", "painted", "bought", "read about",
                                     "talked about", "planned", "cleaned", "fixed", "watched",
                                     "booked", "forgot", "learned", "wrote about", "ordered" };
static const char *const objects[] = {
    "a birthday cake", "the old bicycle", "a trip to Lisbon", "the garden shed",
    "a new laptop", "the kitchen sink", "a sunrise over the lake", "a jazz concert",
    "the tax forms", "a yoga class", "a sushi dinner", "the dentist appointment",
    "a hiking route", "the wedding photos", "a python script", "the car insurance",
    "a chess tournament", "the piano lessons", "a pottery workshop", "the camping gear",
    "a surprise party", "the school project", "a marathon plan", "the vegetable soup" };
static const char *const places[] = { "at home", "in the city", "with her sister",
                                      "at work", "near the beach", "with friends",
                                      "at the library", "in the mountains", "online",
                                      "after the meeting" };
static const char *const whens[] = { "on Monday", "last weekend", "yesterday", "this morning",
                                     "in May", "before dinner", "on her birthday",
                                     "during the holidays", "last night", "in the spring" };
#define N_OF(a) (sizeof a / sizeof a[0])
#define PICK(r, a) a[bench_rng_below(r, N_OF(a))]

static inline void bench_sentence(bench_rng *r, char *out, size_t cap)
{
    snprintf(out, cap, "%s %s %s %s %s.", PICK(r, names), PICK(r, verbs), PICK(r, objects),
             PICK(r, places), PICK(r, whens));
}

/* The calling thread's scheduler times in seconds (Linux schedstat): on a
 * CPU, and runnable but waiting for one.  Zeros where unavailable. */
static inline void bench_sched_times(double *on_cpu_s, double *runq_s)
{
    unsigned long long run = 0, wait = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f && fscanf(f, "%llu %llu", &run, &wait) != 2)
        run = wait = 0;
    if (f)
        fclose(f);
    *on_cpu_s = (double)run / 1e9;
    *runq_s = (double)wait / 1e9;
}

#endif
