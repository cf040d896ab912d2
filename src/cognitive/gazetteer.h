/*
 * gazetteer.h -- built-in place knowledge: countries, their first-level
 * regions, and the world's larger cities with their region and country.
 *
 * The data ships inside the library (share/gazetteer/, converted at build
 * time; its sources and licence are in share/gazetteer/README.md), so the
 * extractor can tell that Austin is a city in Texas, in the United States,
 * and that "I'm in Texas" after "I moved to Austin" refines rather than
 * contradicts.  Names match case-insensitively, ignoring accents and
 * punctuation ("sao paulo" = "São Paulo", "St. Louis" = "St Louis"), and
 * through aliases ("NYC", "USA", "UK", "the States", "Bombay").
 *
 * Thread safety: every function may be called from any number of threads
 * at once.  The lookup tables are built once, on first use (pthread_once);
 * after that nothing here allocates or locks.
 */
#ifndef DM_COGNITIVE_GAZETTEER_H
#define DM_COGNITIVE_GAZETTEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gz_kind {
    GZ_COUNTRY = 0,
    GZ_REGION = 1, /* first-level subdivision: state, province, ... */
    GZ_CITY = 2,
} gz_kind;

/* One place.  Strings are static, NUL-terminated, the canonical names. */
typedef struct gz_place {
    gz_kind kind;
    const char *name;    /* "Austin", "Texas", "United States" */
    const char *region;  /* a city's region; NULL for regions, countries
                            and cities whose region is unknown */
    const char *country; /* the country's name; for a country, itself */
    const char *iso2;    /* the country's ISO 3166-1 alpha-2 code */
    uint32_t population; /* cities: population, 0 when unknown */
    uint32_t id;         /* stable within one build: index of the place */
} gz_place;

/*
 * gz_lookup -- the places called name (len bytes of UTF-8), best first:
 * countries, then regions, then cities by population.  Up to max are
 * written to out; returns how many places have that name in all (which may
 * be more than max).  0 = unknown, or the one-time set-up failed for lack
 * of memory (gz_count() is then 0).
 */
size_t gz_lookup(const char *name, size_t len, const gz_place **out, size_t max);

/*
 * gz_within -- place inner lies in place outer (a city in its region or
 * country, a region in its country); a place is not within itself.
 */
bool gz_within(const gz_place *inner, const gz_place *outer);

/* gz_count -- how many places the gazetteer holds (tests, stats). */
size_t gz_count(void);

#endif
