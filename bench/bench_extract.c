/*
 * bench_extract.c -- throughput of the built-in extractor (ex_extract) on
 * real conversation turns.
 *
 * Reads LoCoMo turns (JSON lines with text, speaker and session_time
 * "2023-05-08T13:56:00"; default ../shared/data/locomo/turns.dev.jsonl,
 * or --turns PATH), keeps them in memory, then runs ex_extract over every
 * turn for --rounds rounds (default 20) on one thread, and prints turns per
 * second and how many facts, events, entities and relations one round
 * found, with a count per fact slot.  --show N prints the first N turns'
 * facts, events and relations (a look at what is found).
 *
 * The time is the best round's (the least disturbed by other work on the
 * machine), and the mean is printed beside it.  Target: >= 20,000 turns/s.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "cognitive/extract.h"

typedef struct turn {
    char *text;
    size_t len;
    char *speaker;
    int64_t time_us;
} turn;

/* iso_us -- "YYYY-MM-DDTHH:MM:SS" as UTC microseconds (the engine stores
 * zone-less times as if they were UTC). */
static int64_t iso_us(const char *s)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec) < 3)
        return 0;
    /* days from civil, counting from March */
    int yy = y - (mo <= 2);
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    return ((days * 86400) + h * 3600 + mi * 60 + sec) * INT64_C(1000000);
}

static turn *load(const char *path, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        bench_die("cannot open %s (use --turns PATH)", path);
    size_t cap = 1024, n = 0;
    turn *t = bench_xmalloc(cap * sizeof *t);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, f)) > 0) {
        json_error_t err;
        json_t *o = json_loadb(line, (size_t)got, 0, &err);
        if (!o)
            continue;
        const char *text = json_string_value(json_object_get(o, "text"));
        const char *spk = json_string_value(json_object_get(o, "speaker"));
        const char *when = json_string_value(json_object_get(o, "session_time"));
        if (text) {
            if (n == cap) {
                cap *= 2;
                t = realloc(t, cap * sizeof *t);
                if (!t)
                    bench_die("out of memory");
            }
            t[n].text = strdup(text);
            t[n].len = strlen(text);
            t[n].speaker = spk ? strdup(spk) : NULL;
            t[n].time_us = iso_us(when);
            n++;
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    *n_out = n;
    return t;
}

static const char *const ETYPE[] = {"activity", "plan", "milestone",
                                    "preference", "social"};

int main(int argc, char **argv)
{
    const char *path = "../shared/data/locomo/turns.dev.jsonl";
    int rounds = 20, show = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--turns") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--show") && i + 1 < argc)
            show = atoi(argv[++i]);
        else
            bench_die("usage: bench_extract [--turns PATH] [--rounds N] "
                      "[--show N]");
    }
    if (rounds < 1)
        rounds = 1;
    size_t n;
    turn *t = load(path, &n);
    if (n == 0)
        bench_die("no turns in %s", path);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += t[i].len;

    /* One counting round, which also shows a sample. */
    size_t nf = 0, ne = 0, nn = 0, nr = 0;
    struct {
        char slot[40];
        size_t n;
    } slots[64];
    size_t n_slots = 0;
    for (size_t i = 0; i < n; i++) {
        ex_input in = { .text = t[i].text, .len = t[i].len, .speaker = t[i].speaker,
                        .role = "user", .time_us = t[i].time_us };
        ex_result r;
        if (ex_extract(&in, &r) != 0)
            bench_die("ex_extract failed on turn %zu", i);
        nf += r.n_facts;
        ne += r.n_events;
        nn += r.n_entities;
        nr += r.n_relations;
        for (size_t k = 0; k < r.n_facts; k++) {
            const char *s = r.facts[k].slot;
            size_t q = 0;
            while (q < n_slots && strcmp(slots[q].slot, s))
                q++;
            if (q == n_slots && n_slots < 64) {
                snprintf(slots[q].slot, sizeof slots[q].slot, "%s", s);
                slots[q].n = 0;
                n_slots++;
            }
            if (q < n_slots)
                slots[q].n++;
        }
        if ((int)i < show) {
            printf("[%s] %s\n", t[i].speaker ? t[i].speaker : "?", t[i].text);
            for (size_t k = 0; k < r.n_facts; k++)
                printf("    fact (%s | %s | %s)%s %.2f\n", r.facts[k].subject,
                       r.facts[k].slot, r.facts[k].value,
                       r.facts[k].polarity == EX_NEGATED     ? " negated"
                       : r.facts[k].polarity == EX_CORRECTION ? " correction"
                                                             : "",
                       r.facts[k].confidence);
            for (size_t k = 0; k < r.n_events; k++)
                printf("    event %s: %s%s\n", ETYPE[r.events[k].type],
                       r.events[k].what, r.events[k].has_time ? " (timed)" : "");
            for (size_t k = 0; k < r.n_relations; k++)
                printf("    rel (%s, %s, %s)\n", r.relations[k].src,
                       r.relations[k].rel, r.relations[k].dst);
        }
        ex_result_free(&r);
    }

    double best = 1e300, total = 0;
    for (int round = 0; round < rounds; round++) {
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++) {
            ex_input in = { .text = t[i].text, .len = t[i].len, .speaker = t[i].speaker,
                            .role = "user", .time_us = t[i].time_us };
            ex_result r;
            ex_extract(&in, &r);
            ex_result_free(&r);
        }
        double s = (double)(bench_now_ns() - t0) / 1e9;
        total += s;
        if (s < best)
            best = s;
    }
    printf("bench_extract: %zu turns (%.1f KiB) from %s, %d rounds, 1 thread\n",
           n, (double)bytes / 1024.0, path, rounds);
    printf("  best round: %.0f turns/s (%.2f us/turn, %.1f MB/s); mean %.0f "
           "turns/s\n",
           (double)n / best, best * 1e6 / (double)n,
           (double)bytes / best / 1e6, (double)n * rounds / total);
    printf("  per round: %zu facts, %zu events, %zu entities, %zu relations\n",
           nf, ne, nn, nr);
    printf("  facts by slot:");
    for (size_t q = 0; q < n_slots; q++)
        printf(" %s=%zu", slots[q].slot, slots[q].n);
    printf("\n");
    for (size_t i = 0; i < n; i++) {
        free(t[i].text);
        free(t[i].speaker);
    }
    free(t);
    return 0;
}
