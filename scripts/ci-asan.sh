#!/bin/sh
# The test suite under AddressSanitizer + UBSan, leak checking on (make
# test-asan). A sanitizer report fails the run twice over: the process
# aborts (abort_on_error / halt_on_error), so a CUnit test fails and a
# runtime test's Server.__exit__ sees a non-zero exit status; and every report
# is also written under $BUILD/sanitizer-logs, which must stay empty (this
# catches a server that a test stopped without checking its status).
set -eu
BUILD=${BUILD:-build-asan}
JOBS=${JOBS:-2}
cmake -S . -B "$BUILD" -DPYOCO_SANITIZE=ON -DPYOCO_WERROR=ON
cmake --build "$BUILD" -j "$JOBS"
LOGS=$(cd "$BUILD" && pwd)/sanitizer-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$LOGS/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGS/ubsan"
export LSAN_OPTIONS="exitcode=23"
status=0
(cd "$BUILD" && ctest --output-on-failure -j "$JOBS") || status=$?
if [ -n "$(ls -A "$LOGS")" ]; then
    echo "== sanitizer reports ($LOGS):"
    for f in "$LOGS"/*; do
        echo "--- $f"
        cat "$f"
    done
    status=1
fi
if [ "$status" -eq 0 ]; then
    echo "test-asan: all tests passed, no sanitizer report"
fi
exit "$status"
