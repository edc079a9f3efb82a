/* libFuzzer target: the server's request parser (examples/server/request.c). */
#include <stddef.h>
#include <stdint.h>

#include "examples/server/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    request_limits lim = {.max_tokens = 512, .max_prompt_ids = 4096, .vocab = 1000};
    completion_request r;
    char err[256];
    if (request_parse((const char *)data, size, &lim, &r, err, sizeof err) == 0) request_free(&r);
    return 0;
}
