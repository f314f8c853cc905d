/* Test helper for test_model_resize_pillow.py: resize a raw interleaved 8-bit image with
 * rsclip_resize_bicubic_u8.  usage: resize_tool in.raw w h channels out_w out_h out.raw */
#include "rsclip/model.h"
#include "rsclip/status.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s in.raw w h channels out_w out_h out.raw\n", argv[0]);
        return 2;
    }
    int w = atoi(argv[2]), h = atoi(argv[3]), ch = atoi(argv[4]);
    int ow = atoi(argv[5]), oh = atoi(argv[6]);
    size_t n = (size_t)w * h * ch, on = (size_t)ow * oh * ch;
    unsigned char *in = malloc(n), *out = malloc(on);
    FILE *f = fopen(argv[1], "rb");
    if (!in || !out || !f || fread(in, 1, n, f) != n) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    if (rsclip_resize_bicubic_u8(in, w, h, (size_t)w * ch, ch, out, ow, oh) != RSCLIP_OK) {
        fprintf(stderr, "resize: %s\n", rsclip_last_error());
        return 1;
    }
    f = fopen(argv[7], "wb");
    if (!f || fwrite(out, 1, on, f) != on || fclose(f) != 0) return 1;
    free(in);
    free(out);
    return 0;
}
