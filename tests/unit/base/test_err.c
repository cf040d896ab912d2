/* test_err.c -- error names and messages. */
#include "testutil.h"

#include <string.h>

#include "base/err.h"

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(dm_errname(DM_ECORRUPT), "DM_ECORRUPT");
    assert_string_equal(dm_errname(DM_OK), "DM_OK");
    assert_string_equal(dm_errname(-999), "DM_EUNKNOWN");
    assert_string_equal(dm_strerror(DM_ENOSPC), "no space left on device");
    assert_int_equal(err_set_msg(DM_EIO, "file %s", "x"), DM_EIO);
    assert_string_equal(err_last_msg(), "file x");
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_names) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
