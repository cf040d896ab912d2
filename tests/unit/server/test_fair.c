/*
 * test_fair.c -- per-user admission (src/server/fair.c): a user gets its
 * bound of slots and no more; the others queue first come first served and
 * the slot passes straight to the oldest; users do not share a bound; a
 * cancelled waiter leaves the queue; pop_any empties every queue; entries
 * go when their user is idle; many threads entering and leaving never let
 * more than the bound run at once.
 */
// ctest-labels: concurrency
// ctest-timeout: 60
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "server/fair.h"

static fair_user *enter(fair *f, const char *user, fair_waiter *w, bool want_admitted)
{
    bool admitted = !want_admitted;
    fair_user *u = fair_enter(f, user, strlen(user), w, &admitted);
    assert_non_null(u);
    assert_int_equal(admitted, want_admitted);
    return u;
}

static void check_stats(fair *f, uint64_t want_users, uint64_t want_waiting)
{
    uint64_t users, waiting;
    fair_stats(f, &users, &waiting);
    assert_int_equal(users, want_users);
    assert_int_equal(waiting, want_waiting);
}

static void test_bound_and_order(void **state)
{
    (void)state;
    fair *f = fair_new(2);
    assert_non_null(f);
    fair_waiter w[6];
    fair_user *a = enter(f, "t\x1f" "alice", &w[0], true);
    assert_ptr_equal(enter(f, "t\x1f" "alice", &w[1], true), a);
    enter(f, "t\x1f" "alice", &w[2], false);
    enter(f, "t\x1f" "alice", &w[3], false);
    enter(f, "t\x1f" "alice", &w[4], false);
    /* Another user, even one whose name extends alice's, has its own. */
    fair_user *b = enter(f, "t\x1f" "alice2", &w[5], true);
    assert_ptr_not_equal(a, b);
    check_stats(f, 2, 3);

    /* Oldest first; a cancelled waiter is skipped. */
    assert_true(fair_cancel(f, a, &w[3]));
    assert_false(fair_cancel(f, a, &w[3]));
    assert_ptr_equal(fair_leave(f, a), &w[2]);
    assert_ptr_equal(fair_leave(f, a), &w[4]);
    check_stats(f, 2, 0);
    /* Nobody waits: the slots free, and the entry goes with the last. */
    assert_null(fair_leave(f, a));
    assert_null(fair_leave(f, a));
    check_stats(f, 1, 0);
    assert_null(fair_leave(f, b));
    check_stats(f, 0, 0);
    fair_free(f);
}

static void test_pop_any(void **state)
{
    (void)state;
    fair *f = fair_new(1);
    fair_waiter w[5];
    fair_user *a = enter(f, "a", &w[0], true);
    enter(f, "a", &w[1], false);
    fair_user *b = enter(f, "b", &w[2], true);
    enter(f, "b", &w[3], false);
    enter(f, "b", &w[4], false);
    int got = 0;
    for (fair_waiter *x; (x = fair_pop_any(f));)
        got |= 1 << (int)(x - w);
    assert_int_equal(got, (1 << 1) | (1 << 3) | (1 << 4));
    check_stats(f, 2, 0);
    /* Each popped waiter holds a slot: all leave, then the entries go. */
    for (int i = 0; i < 2; i++)
        assert_null(fair_leave(f, a));
    for (int i = 0; i < 3; i++)
        assert_null(fair_leave(f, b));
    check_stats(f, 0, 0);
    fair_free(f);
}

/* Threads enter and leave on a few users; a waiter spins until the slot
 * is handed to it.  At no time do more than the bound of a user run. */
#define T_THREADS 8
#define T_ROUNDS 2000
#define T_USERS 3
#define T_BOUND 2

typedef struct slot {
    fair_waiter w;
    atomic_bool handed;
} slot;

static fair *g_f;
static atomic_int g_running[T_USERS];
static atomic_int g_over;

static void *hammer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < T_ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        int u = (int)((seed >> 16) % T_USERS);
        char key[8] = { 'u', (char)('0' + u), 0 };
        slot s = { .w = { NULL } };
        atomic_init(&s.handed, false);
        bool admitted;
        fair_user *fu = fair_enter(g_f, key, 2, &s.w, &admitted);
        if (!fu)
            continue;
        while (!admitted && !atomic_load(&s.handed))
            sched_yield();
        if (atomic_fetch_add(&g_running[u], 1) >= T_BOUND)
            atomic_fetch_add(&g_over, 1);
        atomic_fetch_sub(&g_running[u], 1);
        fair_waiter *next = fair_leave(g_f, fu);
        if (next)
            atomic_store(&((slot *)(void *)next)->handed, true);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    g_f = fair_new(T_BOUND);
    pthread_t th[T_THREADS];
    for (int i = 0; i < T_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, (void *)(uintptr_t)(i + 1)), 0);
    for (int i = 0; i < T_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&g_over), 0);
    check_stats(g_f, 0, 0);
    fair_free(g_f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_and_order),
        cmocka_unit_test(test_pop_any),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
