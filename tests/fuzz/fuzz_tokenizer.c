/* libFuzzer target: the tokenizer. First byte even: the rest is a tokenizer.json to load (and, if
 * it loads, to encode and decode with); odd: the rest is text for a fixed byte-level BPE, whose
 * decode(encode(text)) must give the text back when it is valid UTF-8. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stree.h"

static stree_tokenizer *fixed;

static void round_trip(const stree_tokenizer *tok, const char *text, size_t len) {
    int32_t ids[4096], n = 0;
    if (stree_tokenize(tok, text, len, 0, ids, 4096, &n) != STREE_OK) return;
    size_t need = 0;
    stree_detokenize(tok, ids, n, 0, NULL, 0, &need);
    char *out = malloc(need + 1);
    if (out && stree_detokenize(tok, ids, n, 0, out, need + 1, &need) == STREE_OK) {
        stree_text_stream *ts = NULL;
        if (stree_text_stream_create(tok, 0, &ts) == STREE_OK) {
            const char *piece;
            for (int32_t i = 0; i < n; i++) stree_text_stream_push(ts, ids[i], &piece);
            stree_text_stream_flush(ts, &piece);
            stree_text_stream_free(ts);
        }
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] % 2 == 0) {
        char path[] = "/tmp/stree-fuzz-tok-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) return 0;
        if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
            close(fd);
            unlink(path);
            return 0;
        }
        close(fd);
        stree_tokenizer *tok = NULL;
        if (stree_tokenizer_load(path, &tok) == STREE_OK) {
            static const char sample[] = "Hello, world! 123 \xe4\xb8\xad\xe6\x96\x87 <s>";
            round_trip(tok, sample, sizeof sample - 1);
            stree_tokenizer_free(tok);
        }
        unlink(path);
        return 0;
    }
    if (!fixed && stree_tokenizer_load(STREE_SOURCE_DIR "/tests/fixtures/tokenizers/bytelevel_bpe/tokenizer.json",
                                       &fixed) != STREE_OK)
        abort();
    if (size - 1 < 2048) round_trip(fixed, (const char *)data + 1, size - 1);
    return 0;
}
