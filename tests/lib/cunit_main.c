/* Shared main for CUnit test executables: each test file defines
 * pyoco_test_register(), which adds its suites. Exit status is non-zero
 * when any assertion failed. */
#include <CUnit/Basic.h>
#include <stdio.h>

void pyoco_test_register(void);

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    pyoco_test_register();
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed =
        CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "no test ran\n");
        return 2;
    }
    return failed ? 1 : 0;
}
