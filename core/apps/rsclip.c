/* rsclip command-line tool: placeholder main until the commands land. */
#include "rsclip/rsclip.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("rsclip %s\n", rsclip_version());
        return 0;
    }
    fprintf(stderr, "usage: rsclip --version\n");
    return 2;
}
