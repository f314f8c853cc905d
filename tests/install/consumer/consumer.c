/* A program outside the rsclip tree, built against an installed rsclip (tests/install): loads the
 * tiny fixture model, embeds one text and prints the embedding's size and first value.
 * `consumer MODEL_DIR --cuda` also asks for the CUDA devices and prints the answer (a count, or
 * why there is none). */
#include <rsclip/model.h>
#include <rsclip/status.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2 && !(argc == 3 && !strcmp(argv[2], "--cuda"))) {
        fprintf(stderr, "usage: %s MODEL_DIR [--cuda]\n", argv[0]);
        return 2;
    }
    rsclip_model *m = NULL;
    if (rsclip_model_load(argv[1], NULL, &m) != RSCLIP_OK) {
        fprintf(stderr, "load: %s\n", rsclip_last_error());
        return 1;
    }
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    int32_t ids[4096];
    rsclip_encoder *e = NULL;
    float emb[4096];
    if (mi->text_ctx > 4096 || mi->embed_dim > 4096 ||
        rsclip_model_tokenize(m, "a remote sensing image of river", -1, ids, NULL) != RSCLIP_OK ||
        rsclip_encoder_new(m, NULL, &e) != RSCLIP_OK ||
        rsclip_encode_texts(e, 1, ids, emb, NULL) != RSCLIP_OK) {
        fprintf(stderr, "encode: %s\n", rsclip_last_error());
        return 1;
    }
    printf("rsclip %s: embedding of %d floats, first %.6f\n", rsclip_version(), mi->embed_dim,
           emb[0]);
    rsclip_encoder_free(e);
    rsclip_model_free(m);
    if (argc == 3) {
        int n = 0;
        if (rsclip_cuda_device_count(&n) == RSCLIP_OK)
            printf("cuda: %d device(s)\n", n);
        else
            printf("cuda: %s\n", rsclip_last_error());
    }
    return 0;
}
