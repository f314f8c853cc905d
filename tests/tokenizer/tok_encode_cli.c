/* Test helper: encode texts read from stdin and print the ids, one line per text.
 * usage: tok_encode_cli SPIECE_MODEL CAP < records
 * A record is the text's byte length in decimal, a newline, then the bytes (so texts may hold
 * NULs or newlines). Output: CAP ids separated by spaces, or "ERR <code>" for a refused text. */
#include "rsclip/status.h"
#include "rsclip/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SPIECE_MODEL CAP < records\n", argv[0]);
        return 2;
    }
    rsclip_tokenizer *tok;
    if (rsclip_tokenizer_load(argv[1], NULL, &tok) != RSCLIP_OK) {
        fprintf(stderr, "%s\n", rsclip_last_error());
        return 1;
    }
    int cap = atoi(argv[2]);
    int32_t *ids = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *ids);
    char *text = NULL;
    long len;
    int status = 0;
    while (ids && scanf("%ld", &len) == 1 && getchar() == '\n' && len >= 0) {
        char *t = realloc(text, (size_t)len + 1);
        if (!t || fread(t, 1, (size_t)len, stdin) != (size_t)len) {
            free(t);
            text = NULL;
            status = 1;
            break;
        }
        text = t;
        int rc = rsclip_tokenizer_encode(tok, text, len, ids, cap, NULL);
        if (rc) {
            printf("ERR %d\n", rc);
            continue;
        }
        for (int i = 0; i < cap; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        printf("\n");
    }
    free(text);
    free(ids);
    rsclip_tokenizer_free(tok);
    return status;
}
