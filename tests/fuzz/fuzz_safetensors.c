/* libFuzzer target: open an in-memory safetensors image, walk every tensor, convert the small
 * floating ones and read every byte of every view (so ASan sees any out-of-range pointer). */
#include "rsclip/safetensors.h"
#include "rsclip/status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A private copy so that reads past the input are caught exactly at its end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    rsclip_st_file *f = NULL;
    if (rsclip_st_open_memory(buf, size, "fuzz", &f) == RSCLIP_OK) {
        volatile unsigned sum = 0;
        for (int i = 0; i < rsclip_st_count(f); i++) {
            const rsclip_st_tensor *t = rsclip_st_get(f, i);
            if (rsclip_st_find(f, t->name) != t) abort();
            if (t->nbytes != (size_t)t->n_elements * rsclip_dtype_size(t->dtype)) abort();
            const unsigned char *p = t->data;
            for (size_t k = 0; k < t->nbytes; k++) sum += p[k];
            if (t->n_elements <= 4096) {
                size_t n = (size_t)t->n_elements;
                float *dst = malloc(n ? n * sizeof *dst : 1);
                if (dst) {
                    int rc = rsclip_st_to_f32(t, dst, n);
                    /* The convenience path must agree with the plain conversion. */
                    if (rsclip_st_read_f32(f, t->name, t->n_dims, t->shape, dst, n) != rc) abort();
                    free(dst);
                }
            }
        }
        (void)rsclip_st_metadata(f, "format");
        char fp[17];
        rsclip_st_fingerprint(f, fp);
        (void)sum;
        rsclip_st_close(f);
    } else if (f != NULL || strncmp(rsclip_last_error(), "fuzz: ", 6) != 0) {
        abort(); /* failures must leave *out NULL and name the buffer */
    }
    free(buf);
    return 0;
}
