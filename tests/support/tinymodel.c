/*
 * tinymodel.c -- a tiny deterministic embedding model for the engine tests.
 *
 * Design: the vocabulary is fixed in this file.  Every content word belongs
 * to one of TM_N_TOPICS topics; its vector is the topic's direction (unit
 * length, seeded; the first min(dim, topics) directions orthogonalized)
 * plus a random vector of norm NOISE, drawn from a generator seeded by
 * (seed, word index).  Words of one topic therefore have cosine about
 * 1 / (1 + NOISE^2) with each other, and different topics are orthogonal
 * (dim >= 20) or nearly so.  Function words are pure noise with a weight of 0.05, content
 * words weigh 1, so the SIF-style mean is carried by content words and a
 * query of a topic's words lands near that topic's memories even when it
 * shares no word with them.  The file is written with model_build_write
 * (src/embed/model_build.h); nothing here knows the file format.
 *
 * Invariants: the words are distinct and lowercase ASCII, so the tokenizer
 * maps each to itself.  The same (name, dim, seed) gives the same bytes.
 *
 * Locking: tm_model keeps a small cache of built paths under one mutex.
 */
#include "tinymodel.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "embed/model_build.h"

#define NOISE 0.3
#define FUNCTION_WEIGHT 0.05f

static const char *const topic_names[TM_N_TOPICS] = {
    "food",   "pets",    "travel",   "work",        "programming",
    "music",  "sports",  "family",   "health",      "weather",
    "finance", "home",   "cars",     "school",      "movies",
    "garden", "clothes", "devices",  "celebration", "space",
};

static const char *const topic_words[TM_N_TOPICS][TM_TOPIC_WORDS] = {
    { "pizza", "pasta", "bread", "cheese", "soup", "salad", "chicken", "rice",
      "noodles", "sandwich", "breakfast", "dinner", "lunch", "recipe", "cooking",
      "dessert" },
    { "dog", "cat", "puppy", "kitten", "pet", "leash", "vet", "bark", "fur",
      "hamster", "parrot", "goldfish", "kennel", "paw", "tail", "adopt" },
    { "flight", "airport", "hotel", "passport", "luggage", "vacation", "trip",
      "beach", "suitcase", "tourist", "visa", "boarding", "journey", "resort",
      "itinerary", "abroad" },
    { "office", "meeting", "boss", "colleague", "deadline", "project", "salary",
      "manager", "promotion", "client", "report", "career", "interview",
      "coworker", "overtime", "employer" },
    { "python", "code", "compiler", "debugging", "software", "function",
      "variable", "database", "server", "github", "bug", "algorithm",
      "programmer", "linux", "javascript", "docker" },
    { "guitar", "piano", "song", "concert", "band", "drums", "melody", "singer",
      "album", "violin", "orchestra", "lyrics", "jazz", "rhythm", "chorus",
      "playlist" },
    { "football", "soccer", "tennis", "basketball", "marathon", "running",
      "swimming", "gym", "coach", "stadium", "referee", "goal", "team",
      "cycling", "workout", "tournament" },
    { "mother", "father", "sister", "brother", "daughter", "son", "wife",
      "husband", "grandmother", "grandfather", "cousin", "aunt", "uncle",
      "parents", "children", "baby" },
    { "doctor", "hospital", "medicine", "allergy", "allergic", "fever",
      "headache", "nurse", "pharmacy", "vaccine", "symptoms", "illness",
      "surgery", "prescription", "clinic", "injury" },
    { "rain", "snow", "storm", "sunny", "cloudy", "wind", "thunder", "forecast",
      "temperature", "humid", "fog", "hail", "drizzle", "lightning", "freezing",
      "heatwave" },
    { "money", "bank", "loan", "mortgage", "savings", "budget", "tax",
      "invoice", "credit", "debt", "investment", "stocks", "dividend",
      "payment", "rent", "wallet" },
    { "kitchen", "bedroom", "sofa", "furniture", "garage", "roof", "carpet",
      "apartment", "bathroom", "ceiling", "curtains", "fireplace", "doorbell",
      "basement", "landlord", "chimney" },
    { "car", "truck", "engine", "tire", "driving", "highway", "fuel", "brakes",
      "mechanic", "traffic", "parking", "motorcycle", "steering", "windshield",
      "gasoline", "vehicle" },
    { "teacher", "student", "homework", "exam", "classroom", "university",
      "lecture", "professor", "textbook", "semester", "diploma", "tuition",
      "grades", "campus", "library", "essay" },
    { "movie", "film", "cinema", "actor", "actress", "director", "popcorn",
      "trailer", "sequel", "documentary", "comedy", "thriller", "screenplay",
      "premiere", "netflix", "cartoon" },
    { "garden", "flower", "tree", "plant", "seeds", "tomato", "roses", "soil",
      "watering", "lawn", "hedge", "tulips", "compost", "orchard", "greenhouse",
      "shovel" },
    { "shirt", "dress", "jacket", "shoes", "jeans", "sweater", "coat", "scarf",
      "boots", "hat", "socks", "skirt", "gloves", "tailor", "wardrobe",
      "fashion" },
    { "phone", "laptop", "tablet", "keyboard", "monitor", "printer",
      "headphones", "charger", "battery", "smartwatch", "camera", "router",
      "screen", "bluetooth", "speaker", "touchscreen" },
    { "birthday", "wedding", "party", "anniversary", "gift", "cake", "balloons",
      "christmas", "holiday", "festival", "candles", "invitation",
      "celebration", "champagne", "fireworks", "graduation" },
    { "planet", "star", "galaxy", "telescope", "rocket", "astronaut", "moon",
      "orbit", "comet", "asteroid", "nasa", "satellite", "physics", "chemistry",
      "experiment", "laboratory" },
};

/* Function words, most frequent first; they lead the vocabulary. */
static const char *const function_words[] = {
    "the", "a", "an", "i", "my", "me", "we", "our", "you", "your", "he",
    "she", "it", "they", "is", "was", "are", "were", "be", "to", "of", "and",
    "in", "on", "at", "for", "with", "this", "that", "have", "has", "had",
    "will", "would", "can", "do", "did", "not", "about", "from", "very",
    "really", "today", "yesterday", "tomorrow", "last", "next", "week",
    "went", "got", "like", "love", "new", "old", "some",
};
#define N_FUNCTION (sizeof function_words / sizeof function_words[0])
#define N_WORDS (N_FUNCTION + TM_N_TOPICS * TM_TOPIC_WORDS)

/* The connecting words tm_sentence puts between content words. */
static const char *const joiners[] = { "and", "the", "my", "with", "about",
                                       "for", "a", "our" };

const char *tm_topic_name(unsigned topic)
{
    return topic < TM_N_TOPICS ? topic_names[topic] : NULL;
}

const char *tm_topic_word(unsigned topic, unsigned i)
{
    if (topic >= TM_N_TOPICS || i >= TM_TOPIC_WORDS)
        return NULL;
    return topic_words[topic][i];
}

int tm_word_topic(const char *word)
{
    for (unsigned t = 0; t < TM_N_TOPICS; t++)
        for (unsigned i = 0; i < TM_TOPIC_WORDS; i++)
            if (strcmp(topic_words[t][i], word) == 0)
                return (int)t;
    return -1;
}

/* A standard normal deviate from r (Box-Muller; one of the pair used). */
static double gauss(tu_rng *r)
{
    double u1 = ((double)(tu_rand(r) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(tu_rand(r) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* v := a random direction of norm `norm`, from r. */
static void random_vec(tu_rng *r, uint32_t dim, double norm, double *v)
{
    double s = 0;
    for (uint32_t j = 0; j < dim; j++) {
        v[j] = gauss(r);
        s += v[j] * v[j];
    }
    s = sqrt(s);
    for (uint32_t j = 0; j < dim; j++)
        v[j] = v[j] / s * norm;
}

int tm_build(const char *path, const char *name, uint32_t dim, uint64_t seed)
{
    const char *words[N_WORDS];
    float *vecs = calloc((size_t)N_WORDS * dim, sizeof *vecs);
    float *weights = calloc(N_WORDS, sizeof *weights);
    double *dirs = calloc((size_t)TM_N_TOPICS * dim, sizeof *dirs);
    double *tmp = calloc(dim, sizeof *tmp);
    int rc = DM_ENOMEM;
    if (!vecs || !weights || !dirs || !tmp)
        goto done;

    tu_rng r;
    tu_rng_seed(&r, seed * 1000003u + dim);
    for (unsigned t = 0; t < TM_N_TOPICS; t++) {
        double *d = dirs + (size_t)t * dim;
        random_vec(&r, dim, 1.0, d);
        /* While the dimension allows, make the topics exactly orthogonal
         * (Gram-Schmidt), so that no two topics are accidentally close. */
        if (t < dim) {
            for (unsigned u = 0; u < t; u++) {
                const double *e = dirs + (size_t)u * dim;
                double dot = 0;
                for (uint32_t j = 0; j < dim; j++)
                    dot += d[j] * e[j];
                for (uint32_t j = 0; j < dim; j++)
                    d[j] -= dot * e[j];
            }
            double n = 0;
            for (uint32_t j = 0; j < dim; j++)
                n += d[j] * d[j];
            n = sqrt(n);
            for (uint32_t j = 0; j < dim; j++)
                d[j] /= n;
        }
    }

    /* Function words first (they are the most frequent), then the content
     * words interleaved across topics so that no topic is all early or all
     * late in the frequency order. */
    size_t w = 0;
    for (size_t i = 0; i < N_FUNCTION; i++, w++) {
        words[w] = function_words[i];
        weights[w] = FUNCTION_WEIGHT;
        tu_rng_seed(&r, seed * 7919u + w);
        random_vec(&r, dim, 1.0, tmp);
        for (uint32_t j = 0; j < dim; j++)
            vecs[w * dim + j] = (float)tmp[j];
    }
    for (unsigned i = 0; i < TM_TOPIC_WORDS; i++) {
        for (unsigned t = 0; t < TM_N_TOPICS; t++, w++) {
            words[w] = topic_words[t][i];
            weights[w] = 1.0f;
            tu_rng_seed(&r, seed * 7919u + w);
            random_vec(&r, dim, NOISE, tmp);
            for (uint32_t j = 0; j < dim; j++)
                vecs[w * dim + j] = (float)(dirs[(size_t)t * dim + j] + tmp[j]);
        }
    }

    model_build_input in;
    memset(&in, 0, sizeof in);
    in.name = name;
    in.dim = dim;
    in.n_words = (uint32_t)N_WORDS;
    in.words = words;
    in.vectors = vecs;
    in.weights = weights;
    in.common_top = 0; /* no common component: the noise has none to remove */
    rc = model_build_write(&in, path);
done:
    free(tmp);
    free(dirs);
    free(weights);
    free(vecs);
    return rc;
}

/* The models built so far in this process. */
#define CACHE_CAP 16
static struct {
    char name[64];
    uint32_t dim;
    uint64_t seed;
    char *path;
} cache[CACHE_CAP];
static int n_cache;
static char cache_dir[4096];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER; /* guards cache */

const char *tm_model(const char *name, uint32_t dim, uint64_t seed)
{
    const char *path = NULL;
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < n_cache; i++) {
        if (strcmp(cache[i].name, name) == 0 && cache[i].dim == dim &&
            cache[i].seed == seed) {
            path = cache[i].path;
            goto out;
        }
    }
    if (n_cache == CACHE_CAP || strlen(name) >= sizeof cache[0].name) {
        fprintf(stderr, "tm_model: too many models or name too long\n");
        abort();
    }
    if (!cache_dir[0]) {
        /* Not tu_tmpdir: its static result belongs to the test program. */
        const char *base = getenv("DM_TEST_TMPDIR");
        if (!base || !*base)
            base = "/tmp";
        mkdir(base, 0755);
        snprintf(cache_dir, sizeof cache_dir, "%s/tinymodel.%d", base, (int)getpid());
        tu_rmrf(cache_dir);
        if (mkdir(cache_dir, 0755) != 0) {
            perror(cache_dir);
            abort();
        }
    }
    char buf[4200];
    snprintf(buf, sizeof buf, "%s/%s-%u-%llu.dmm", cache_dir, name, dim,
             (unsigned long long)seed);
    int rc = tm_build(buf, name, dim, seed);
    if (rc != DM_OK) {
        fprintf(stderr, "tm_model: building %s failed: %s (%s)\n", buf,
                dm_errname(rc), err_last_msg());
        abort();
    }
    snprintf(cache[n_cache].name, sizeof cache[n_cache].name, "%s", name);
    cache[n_cache].dim = dim;
    cache[n_cache].seed = seed;
    cache[n_cache].path = strdup(buf);
    if (!cache[n_cache].path)
        abort();
    path = cache[n_cache++].path;
out:
    pthread_mutex_unlock(&cache_mu);
    return path;
}

const char *tm_default_model(void)
{
    return tm_model(TM_DEFAULT_NAME, TM_DEFAULT_DIM, TM_DEFAULT_SEED);
}

size_t tm_sentence(tu_rng *r, unsigned topic, unsigned n_words, char *out,
                   size_t cap)
{
    unsigned used = 0; /* bit set of the topic's words already chosen */
    size_t len = 0;
    if (cap == 0)
        return 0;
    out[0] = '\0';
    if (n_words > TM_TOPIC_WORDS)
        n_words = TM_TOPIC_WORDS;
    for (unsigned k = 0; k < n_words; k++) {
        unsigned i;
        do {
            i = (unsigned)tu_randn(r, TM_TOPIC_WORDS);
        } while (used & (1u << i));
        used |= 1u << i;
        int n;
        if (k == 0)
            n = snprintf(out + len, cap - len, "%s", topic_words[topic][i]);
        else
            n = snprintf(out + len, cap - len, " %s %s",
                         joiners[tu_randn(r, sizeof joiners / sizeof joiners[0])],
                         topic_words[topic][i]);
        if (n < 0 || (size_t)n >= cap - len) {
            len = strlen(out);
            break;
        }
        len += (size_t)n;
    }
    return len;
}

void tm_options(dm_options *o)
{
    dm_options_init(o);
    o->model_path = tm_default_model();
    o->sync = DM_SYNC_NONE;
    o->memtable_bytes = 1u << 20;
}
