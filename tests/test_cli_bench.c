/* stree bench / stree tune through the CLI: a small run writes its JSON and CSV, and malformed
 * workload files, modes and tree configs fail with a message naming the file, line or field. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/golden.h"

/* Runs the CLI with args; returns its exit status and its stderr (static buffer). */
static int run_cli(const char *args, const char **err) {
    static char out[16384];
    char cmd[4096], errf[] = "/tmp/stree-cli-stderr-XXXXXX";
    int fd = mkstemp(errf);
    cr_assert_geq(fd, 0);
    snprintf(cmd, sizeof cmd, "'%s' %s > /dev/null 2> '%s'", STREE_CLI_PATH, args, errf);
    int rc = system(cmd);
    FILE *f = fdopen(fd, "rb");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = '\0';
    if (f) fclose(f);
    remove(errf);
    *err = out;
    return rc;
}

static const char *write_tmp(const char *dir, const char *name, const char *text) {
    static char path[8][512];
    static int k;
    cr_assert_eq(write_text(dir, name, text), 0);
    char *p = path[k++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* The text of a file the CLI wrote, NUL-terminated (criterion assert when it is missing). */
static void read_text(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s was not written", path);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

Test(cli_bench, small_run_writes_json_and_csv) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    const char *err;
    char args[2048];
    snprintf(args, sizeof args,
             "bench --backend cpu --model '%s' --synthetic 2,12 --max-new 6 --reps 1 --warmup 0 --mode ar "
             "--mode chain:2 --json '%s/b.json' --csv '%s/b.csv'",
             fixture_dir("nemotron_h"), dir, dir);
    cr_assert_eq(run_cli(args, &err), 0, "%s", err);
    char path[512], buf[8192];
    snprintf(path, sizeof path, "%s/b.json", dir);
    read_text(path, buf, sizeof buf);
    cr_expect(strstr(buf, "\"schema\":\t\"stree-bench/1\"") != NULL, "%s", buf);
    cr_expect(strstr(buf, "\"mode\":\t\"chain:2\"") != NULL);
    cr_expect(strstr(buf, "acceptance_per_depth") != NULL);
    snprintf(path, sizeof path, "%s/b.csv", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    int lines = 0;
    while (fgets(buf, sizeof buf, f)) lines++;
    fclose(f);
    cr_expect_eq(lines, 3, "header + one row per mode");
    temp_dir_remove(dir);
}

/* Sampled modes on the test backend (STREE_TEST_BACKEND): AR, a sampled draft-model tree (speculative
 * sampling) and a dynamic tree (target-only) at temperature 1 */
Test(cli_bench, sampled_modes_on_the_test_backend) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    const char *tree = write_tmp(dir, "t.json", "{\"type\": \"static\", \"paths\": [[0],[1],[0,0],[0,1],[1,0]]}");
    const char *err;
    char args[2048];
    snprintf(args, sizeof args,
             "bench --backend %s --model '%s' --draft '%s' --synthetic 2,12 --max-new 12 --reps 1 --warmup 0 "
             "--mode ar --mode 'tree:%s' --mode dynamic:2,3,6 --temperature 1 --top-k 50 --top-p 0.9 --seed 7 "
             "--json '%s/b.json'",
             test_backend() == STREE_BACKEND_CUDA ? "cuda" : "cpu", fixture_dir("granite_dense"),
             fixture_dir("llama"), tree, dir);
    cr_assert_eq(run_cli(args, &err), 0, "%s", err);
    char path[512], buf[16384];
    snprintf(path, sizeof path, "%s/b.json", dir);
    read_text(path, buf, sizeof buf);
    cr_expect(strstr(buf, "\"temperature\":\t1") != NULL, "%s", buf);
    cr_expect(strstr(buf, "\"mode\":\t\"dynamic:2,3,6\"") != NULL, "%s", buf);
    temp_dir_remove(dir);
}

static void expect_bench_error(const char *workload_text, const char *extra, const char *needle) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    const char *err;
    const char *w = write_tmp(dir, "w.jsonl", workload_text);
    char args[2048];
    snprintf(args, sizeof args, "bench --backend cpu --model '%s' --workload '%s' --reps 1 %s", fixture_dir("nemotron_h"),
             w, extra ? extra : "");
    cr_expect_neq(run_cli(args, &err), 0, "a malformed input must fail");
    cr_expect(strstr(err, needle) != NULL, "'%s' not in: %s", needle, err);
    temp_dir_remove(dir);
}

Test(cli_bench, workload_not_json) { expect_bench_error("{\"tokens\": [1, 2]}\nnot json\n", NULL, "w.jsonl:2"); }
Test(cli_bench, workload_token_out_of_vocab) {
    expect_bench_error("{\"tokens\": [1, 99999]}\n", NULL, "w.jsonl:1: token 1 is not an id");
}
Test(cli_bench, workload_missing_tokens) { expect_bench_error("{\"prompt\": \"hello\"}\n", NULL, "needs \"tokens\""); }
Test(cli_bench, workload_bad_max_new) {
    expect_bench_error("{\"tokens\": [1], \"max_new\": -3}\n", NULL, "\"max_new\" must be a positive integer");
}
Test(cli_bench, workload_empty) { expect_bench_error("\n\n", NULL, "no prompts"); }
Test(cli_bench, unknown_mode) { expect_bench_error("{\"tokens\": [1, 2]}\n", "--mode fast", "unknown mode 'fast'"); }
Test(cli_bench, bad_tree_file) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    const char *t = write_tmp(dir, "t.json", "{\"type\": \"static\", \"paths\": [[1, 1]]}");
    char extra[1024];
    snprintf(extra, sizeof extra, "--mode 'tree:%s'", t);
    expect_bench_error("{\"tokens\": [1, 2]}\n", extra, "prefix");
    temp_dir_remove(dir);
}

Test(cli_bench, tune_writes_a_loadable_tree) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    const char *err;
    char args[2048], tree[512];
    snprintf(tree, sizeof tree, "%s/tuned.json", dir);
    snprintf(args, sizeof args,
             "tune --backend cpu --model '%s' --self-draft --synthetic 2,12 --max-new 8 --max-budget 8 --out '%s'",
             fixture_dir("nemotron_h"), tree);
    cr_assert_eq(run_cli(args, &err), 0, "%s", err);
    snprintf(args, sizeof args, "generate --backend cpu --model '%s' --tokens 1,2,3 --max-new 8 --self-draft --tree '%s'",
             fixture_dir("nemotron_h"), tree);
    cr_expect_eq(run_cli(args, &err), 0, "the tuned tree must load: %s", err);
    temp_dir_remove(dir);
}
