/*
 * lexicon.h -- the word lists of the built-in extractor (extract.c): one
 * sorted table of English words, each with its word classes (article,
 * family word, occupation, ...), the verb it is a form of, and a small
 * datum (a family relation, a number's value, a month).
 *
 * The table is static and read-only, so lookups are thread-safe.  It is
 * kept sorted by byte order (strcmp) so that lx_find is a binary search;
 * lx_check verifies the order and the unit test runs it.
 */
#ifndef DM_COGNITIVE_LEXICON_H
#define DM_COGNITIVE_LEXICON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Word classes (bits of lx_entry.cls).  A word may be in several. */
#define LX_ART          (UINT64_C(1) << 0)
#define LX_POSS         (UINT64_C(1) << 1)
#define LX_DET          (UINT64_C(1) << 2)
#define LX_PRONOBJ      (UINT64_C(1) << 3)
#define LX_SUBJ         (UINT64_C(1) << 4)
#define LX_ADV          (UINT64_C(1) << 5)
#define LX_NEG          (UINT64_C(1) << 6)
#define LX_BE           (UINT64_C(1) << 7)
#define LX_HAVE         (UINT64_C(1) << 8)
#define LX_DO           (UINT64_C(1) << 9)
#define LX_WILL         (UINT64_C(1) << 10)
#define LX_MODAL        (UINT64_C(1) << 11)
#define LX_CAN          (UINT64_C(1) << 12)
#define LX_CONJ         (UINT64_C(1) << 13)
#define LX_SUB          (UINT64_C(1) << 14)
#define LX_PREP         (UINT64_C(1) << 15)
#define LX_FAMILY       (UINT64_C(1) << 16)
#define LX_ANIMAL       (UINT64_C(1) << 17)
#define LX_OCC          (UINT64_C(1) << 18)
#define LX_INDUSTRY     (UINT64_C(1) << 19)
#define LX_LANG         (UINT64_C(1) << 20)
#define LX_DIET         (UINT64_C(1) << 21)
#define LX_FOOD         (UINT64_C(1) << 22)
#define LX_HEALTH       (UINT64_C(1) << 23)
#define LX_BODY         (UINT64_C(1) << 24)
#define LX_RELSTAT      (UINT64_C(1) << 25)
#define LX_GENDER       (UINT64_C(1) << 26)
#define LX_DEMONYM      (UINT64_C(1) << 27)
#define LX_DAY          (UINT64_C(1) << 28)
#define LX_MONTH        (UINT64_C(1) << 29)
#define LX_FIRSTNAME    (UINT64_C(1) << 30)
#define LX_ORGSUF       (UINT64_C(1) << 31)
#define LX_ORGKIND      (UINT64_C(1) << 32)
#define LX_CLUB         (UINT64_C(1) << 33)
#define LX_NUM          (UINT64_C(1) << 34)
#define LX_SPEECH       (UINT64_C(1) << 35)
#define LX_HYPO         (UINT64_C(1) << 36)
#define LX_INTERJ       (UINT64_C(1) << 37)
#define LX_TIME         (UINT64_C(1) << 38)
#define LX_NPSTOP       (UINT64_C(1) << 39)
#define LX_VAGUE        (UINT64_C(1) << 40)
#define LX_QWORD        (UINT64_C(1) << 41)
#define LX_SKILLV       (UINT64_C(1) << 42)
#define LX_HOBBYV       (UINT64_C(1) << 43)
#define LX_ACTIVITY     (UINT64_C(1) << 44)
#define LX_POSSESSION   (UINT64_C(1) << 45)
#define LX_HEALTHADJ    (UINT64_C(1) << 46)
#define LX_CORR         (UINT64_C(1) << 47)
#define LX_FREQ         (UINT64_C(1) << 48)
#define LX_DEGREE       (UINT64_C(1) << 49)
#define LX_SCHOOL       (UINT64_C(1) << 50)
#define LX_MODADJ       (UINT64_C(1) << 51)
#define LX_BRAND        (UINT64_C(1) << 52)
#define LX_ORGNAME      (UINT64_C(1) << 53)
#define LX_PLACEWORD    (UINT64_C(1) << 54)
#define LX_KINADJ       (UINT64_C(1) << 55)
#define LX_CREATIVE     (UINT64_C(1) << 56)
#define LX_PERSONWORD   (UINT64_C(1) << 57)

/* Verb forms (bits of lx_entry.form). */
#define LXF_BASE 0x01 /* live */
#define LXF_S3 0x02   /* lives */
#define LXF_PAST 0x04 /* lived */
#define LXF_PP 0x08   /* lived (past participle) */
#define LXF_ING 0x10  /* living */

/* The verbs the extractor knows, by lemma. */
typedef enum lx_verb {
    LV_NONE = 0,
    LV_BE,
    LV_HAVE,
    LV_DO,
    LV_LIVE,
    LV_MOVE,
    LV_RELOCATE,
    LV_SETTLE,
    LV_RESIDE,
    LV_WORK,
    LV_QUIT,
    LV_LEAVE,
    LV_START,
    LV_BEGIN,
    LV_JOIN,
    LV_STUDY,
    LV_MAJOR,
    LV_GRADUATE,
    LV_ATTEND,
    LV_GO,
    LV_GROW,
    LV_COME,
    LV_RAISE,
    LV_BEAR,
    LV_OWN,
    LV_ADOPT,
    LV_RESCUE,
    LV_LOVE,
    LV_LIKE,
    LV_ENJOY,
    LV_ADORE,
    LV_PREFER,
    LV_HATE,
    LV_DISLIKE,
    LV_DETEST,
    LV_LOATHE,
    LV_STAND,
    LV_EAT,
    LV_DRINK,
    LV_STOP,
    LV_GIVE,
    LV_SPEAK,
    LV_PLAY,
    LV_PAINT,
    LV_KNIT,
    LV_DRAW,
    LV_RUN,
    LV_SWIM,
    LV_BIKE,
    LV_CYCLE,
    LV_COOK,
    LV_BAKE,
    LV_GARDEN,
    LV_HIKE,
    LV_SURF,
    LV_SKI,
    LV_DANCE,
    LV_SING,
    LV_WRITE,
    LV_READ,
    LV_CROCHET,
    LV_SEW,
    LV_JOG,
    LV_FISH,
    LV_CAMP,
    LV_CLIMB,
    LV_SKATE,
    LV_SNOWBOARD,
    LV_GOLF,
    LV_MEDITATE,
    LV_WANT,
    LV_PLAN,
    LV_HOPE,
    LV_TRY,
    LV_TURN,
    LV_MARRY,
    LV_DIVORCE,
    LV_ENGAGE,
    LV_GET,
    LV_BECOME,
    LV_CALL,
    LV_NAME,
    LV_BREAK,
    LV_HURT,
    LV_INJURE,
    LV_SPRAIN,
    LV_TEAR,
    LV_DIAGNOSE,
    LV_SUFFER,
    LV_KNOW,
    LV_VISIT,
    LV_MEET,
    LV_CELEBRATE,
    LV_HOST,
    LV_RETIRE,
    LV_BUY,
    LV_VOLUNTEER,
    LV_SIGN,
    LV_ENROLL,
    LV_REGISTER,
    LV_TRAVEL,
    LV_FLY,
    LV_DRIVE,
    LV_TEACH,
    LV_PROMOTE,
    LV_HIRE,
    LV_FIRE,
    LV_LAY,
    LV_SWITCH,
    LV_CHANGE,
    LV_FINISH,
    LV_COMPLETE,
    LV_WIN,
    LV_OPEN,
    LV_LAUNCH,
    LV_PUBLISH,
    LV_WATCH,
    LV_SEE,
    LV_TAKE,
    LV_MAKE,
    LV_LEARN,
    LV_PRACTICE,
    LV_PICK,
    LV_HEAD,
    LV_RETURN,
    LV_DECIDE,
    LV_SPEND,
    LV_HANG,
    LV_CATCH,
    LV_THROW,
    LV_PERFORM,
    LV_THINK,
    LV_SAY,
    LV_TELL,
    LV_BELIEVE,
    LV_FEEL,
    LV_WISH,
    LV_NEED,
    LV_IDENTIFY,
    LV_FOLLOW,
    LV_SMOKE,
    LV_LOSE,
    LV_FIND,
    LV_APPLY,
    LV_EXPLORE,
    LV_WALK,
    LV_DATE,
    LV_HELP,
    LV_USE,
    LV_BUILD,
    LV_CREATE,
    LV_RECOVER,
    LV_INTERN,
    LV_COACH,
    LV_TRAIN,
    LV_TOUR,
    LV_PARTICIPATE,
    LV_COMPETE,
    LV_ORGANIZE,
    LV_WELCOME,
    LV_BRING,
    LV_SEND,
    LV_SELL,
    LV_PASS,
    LV_FAIL,
    LV_RECEIVE,
    LV_EARN,
    LV_REMEMBER,
    LV_ASK,
    LV_CLAIM,
    LV_SUGGEST,
    LV_INSIST,
    LV_RECKON,
    LV_ASSUME,
    LV_WONDER,
    LV_EXPECT,
    LV_MEAN,
    LV_MISS,
    LV_GUESS,
    LV_EMPLOY,
    LV_PROPOSE,
    LV_RELAX,
    LV_SHOP,
    LV_KAYAK,
    LV_SAIL,
    LV_BOWL,
    LV_BOOK,
    LV_CANCEL,
    LV_HIT,
    LV_REACH,
    LV_ACHIEVE,
    LV_ACCOMPLISH,
    LV_DROP,
    LV_ABANDON,
    LV_SCRAP,
    LV_COUNT
} lx_verb;


typedef struct lx_entry {
    const char *w; /* lowercase; multiword entries use one space */
    uint64_t cls;  /* LX_* bits */
    uint8_t verb;  /* lx_verb of which w is a form, LV_NONE if none */
    uint8_t form;  /* LXF_* bits when verb is set */
    uint8_t data;  /* LX_FAMILY: index into EX_FAMILY_RELATIONS; LX_ANIMAL:
                      index into lx_species; LX_NUM: the value; LX_MONTH:
                      1..12 */
} lx_entry;

/* lx_find -- the entry for the lowercase word w (len bytes), or NULL. */
const lx_entry *lx_find(const char *w, size_t len);

/* lx_verb_name -- the lemma of verb v ("live"); "" for LV_NONE. */
const char *lx_verb_name(int v);

/* lx_species -- the singular name of animal index i ("dog"), or NULL. */
const char *lx_species(int i);

/* lx_check -- the table is strictly sorted and every verb index valid
 * (for the unit test); returns the index of the first bad entry, or -1. */
long lx_check(void);

#endif
