#include "examples/cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_int(const char *flag, const char *v, int32_t lo, int32_t *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || errno || x < lo || x > 0x7fffffff) {
        fprintf(stderr, "stree: %s needs an integer >= %d\n", flag, lo);
        return -1;
    }
    *out = (int32_t)x;
    return 0;
}

int cli_float(const char *flag, const char *v, float *out) {
    char *end;
    errno = 0;
    float x = v ? strtof(v, &end) : 0.0f;
    if (!v || !*v || *end || errno) {
        fprintf(stderr, "stree: %s needs a number, got '%s'\n", flag, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

int cli_backend(const char *v, stree_backend *out) {
    if (!strcmp(v, "cpu")) *out = STREE_BACKEND_CPU;
    else if (!strcmp(v, "cuda")) *out = STREE_BACKEND_CUDA;
    else if (!strcmp(v, "auto")) *out = STREE_BACKEND_AUTO;
    else {
        fprintf(stderr, "stree: --backend must be cpu, cuda or auto\n");
        return -1;
    }
    return 0;
}

int cli_sampling_flag(const char *f, const char *v, stree_sampling_params *sp) {
    if (!strcmp(f, "--temperature")) return cli_float(f, v, &sp->temperature) ? -1 : 1;
    if (!strcmp(f, "--top-p")) return cli_float(f, v, &sp->top_p) ? -1 : 1;
    if (!strcmp(f, "--min-p")) return cli_float(f, v, &sp->min_p) ? -1 : 1;
    if (!strcmp(f, "--repetition-penalty")) return cli_float(f, v, &sp->repetition_penalty) ? -1 : 1;
    if (!strcmp(f, "--top-k")) return cli_int(f, v, 0, &sp->top_k) ? -1 : 1;
    if (!strcmp(f, "--seed")) {
        int32_t seed = 0;
        if (cli_int(f, v, 0, &seed)) return -1;
        sp->seed = (uint64_t)seed;
        return 1;
    }
    return 0;
}
