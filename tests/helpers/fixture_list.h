/* The HF golden fixtures under tests/fixtures (tools/fixtures/make_fixtures.py makes them). */
#ifndef STREE_TESTS_FIXTURE_LIST_H
#define STREE_TESTS_FIXTURE_LIST_H

#include <stddef.h>

/* The name is stored inline: Criterion copies parameters into each test's worker process, where
 * pointers into the parent's memory are meaningless. */
typedef struct fixture_param {
    char name[32];
} fixture_param;

static fixture_param stree_fixture_params[] = {
    {"mamba2"}, {"bamba"}, {"granite_dense"}, {"granite_moe"}, {"nemotron_h"}, {"falcon_h1"},
    {"falcon_h1_norm"}, {"llama"}, {"qwen3"}, {"nemotron_h_hub"}, {"granite_moe_hub"},
};
#define STREE_N_FIXTURES (sizeof stree_fixture_params / sizeof stree_fixture_params[0])

/* Criterion parameter array over every fixture. */
#define STREE_FIXTURE_PARAMS(suite, test)                                                   \
    ParameterizedTestParameters(suite, test) {                                              \
        return cr_make_param_array(fixture_param, stree_fixture_params, STREE_N_FIXTURES); \
    }

#endif
