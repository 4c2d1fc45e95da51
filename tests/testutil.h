/* testutil.h — the few helpers every test executable shares: where ../shared is, golden
 * tensors, tolerance checks that print the reference, the tolerance and the max error
 * (llm.c test_gpt2 style), and exit codes (0 pass, 1 fail, 77 skipped). */
#ifndef SD35_TESTUTIL_H
#define SD35_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

#define TEST_SKIP 77

/* $SD35_SHARED_DIR (set by meson to ../shared); NULL if absent */
const char *test_shared_dir (void);
/* shared_dir/rel, or skip (exit 77 with a message) when ../shared or the file is absent. */
char *test_shared_path_or_skip (const char *rel);
/* path of the test-model dir or build dir etc. from env var; skip when unset */
const char *test_env_or_skip (const char *var);

/* golden file opened or the test fails */
struct st_file *test_open_golden (const char *rel);
/* fp32 copy of a golden tensor (fails the test if missing) */
float *test_golden_f32 (struct st_file *f, const char *name, size_t *numel);
/* malloc'd copy of a U8 golden tensor (fails the test if missing or of another dtype) */
uint8_t *test_golden_u8 (struct st_file *f, const char *name, size_t *numel);

/* max|got − ref| ≤ rel_tol · max|ref| (+ abs_floor); prints one line "ok"/"FAIL" with the
 * values; returns 1 if ok.  Failures are counted. */
int test_close (const char *what, const float *got, const float *ref, size_t n, double rel_tol);
/* exact equality of ints / bytes */
int test_equal_i32 (const char *what, const int32_t *got, const int64_t *ref, size_t n);
int test_within_u8 (const char *what, const uint8_t *got, const uint8_t *ref, size_t n,
                    int max_diff);
/* generic assertion with a message */
int test_check (int cond, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* A new folder $TMPDIR/sd35-test-NAME-XXXXXX (default /tmp); malloc'd path.  Exits with a
 * failure when it cannot be made. */
char *test_make_tmpdir (const char *name);
/* Removes dir and everything under it (links are removed, never followed); only folders
 * test_make_tmpdir made (a "sd35-test-" name), anything else is left alone. */
void test_remove_tree (const char *dir);
/* A model folder in dir (made if absent) in the official layout around the tiny goldens of
 * shared: text_encoders/ (CLIP-L, CLIP-G, T5), the HF configs and the tokenizers, as links;
 * with mmdit_src (relative to shared) linked as dir/mmdit_name too, unless mmdit_src is NULL.
 * Returns 1, or 0 (a failure counted and printed) when a link cannot be made. */
int test_tiny_model_layout (const char *shared, const char *dir, const char *mmdit_src,
                            const char *mmdit_name);
/* Runs argv[0] with argv (no shell; NULL-terminated) and waits: its exit status, or -1 when it
 * could not be started or did not exit normally. */
int test_run_argv (char *const argv[]);

/* 0 if no failure so far, else 1 (use as `return test_exit ();`) */
int test_exit (void);
int test_failures (void);

#endif
