/* rsclip command-line tool: dispatch to the commands (one file each, cmd_<name>.c). */
#include "app.h"

#include <malloc.h>
#include <string.h>

/* The command table: one row and one cmd_<name>.c per command. */
static const app_command commands[] = {
    {"index", cmd_index, "index rasters into a searchable index file", app_usage_index},
    {"plan", cmd_plan, "count the work of an indexing run once, for array jobs", app_usage_plan},
    {"search", cmd_search, "find the tiles of an index that match a text", app_usage_search},
    {"merge", cmd_merge, "merge index parts (or indexes) into one file", app_usage_merge},
    {"info", cmd_info, "describe an index", app_usage_info},
    {"serve", cmd_serve, "a local web app: search, map, gallery, JSON API", app_usage_serve},
    {"remove", cmd_remove, "remove scenes from an index", app_usage_remove},
    {"tokenize", cmd_tokenize, "print the token ids of texts", app_usage_tokenize},
    {"embed", cmd_embed, "print image or text embeddings as JSON", app_usage_embed},
    {"classify", cmd_classify, "zero-shot classify images against labels", app_usage_classify},
    {"model", cmd_model, "download models from the Hugging Face hub", app_usage_model},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const app_command *find_command(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_help(FILE *f) {
    fprintf(f, "usage: rsclip [--version [--verbose]] [help] COMMAND [ARGS]\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "Models (-m) are a snapshot folder, 'base' (lcybuaa/Git-RSCLIP-base), 'large'\n"
            "(lcybuaa/Git-RSCLIP) or a Hugging Face repo id, fetched once with `rsclip model "
            "fetch`.\n"
            "'rsclip COMMAND --help' describes a command. Exit status: 0 ok, 1 error, 2 usage.\n");
}

/* --help / -h anywhere before "--". */
static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    /* SQLite allocates its 64 KiB pages one by one; glibc then grows and trims the heap with brk
     * again and again, each trim a TLB flush on every core (a third of a merge's time on the VMs
     * measured). Keep up to 256 MiB of freed memory, grow by 64 MiB: a process setting, so the
     * command sets it, never the library. */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_TOP_PAD, 64 << 20);
    app_install_log();
    if (argc < 2) {
        print_help(stderr);
        return APP_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("rsclip %s\n", rsclip_version());
        if (argc > 2 && (strcmp(argv[2], "--verbose") == 0 || strcmp(argv[2], "-v") == 0)) {
            /* the CPU, the usable compute paths and what each precision runs, and why */
            char report[4096];
            rsclip_cpu_report(report, sizeof report);
            fputs(report, stdout);
            /* the GPU side: whether the CUDA module opens here, and the devices it sees */
            int ndev = 0;
            if (rsclip_cuda_device_count(&ndev) != RSCLIP_OK)
                printf("cuda: %s\n", rsclip_last_error());
            else if (ndev == 0)
                printf("cuda: 0 devices (no usable CUDA driver or GPU)\n");
            else
                printf("cuda: %d device%s\n", ndev, ndev == 1 ? "" : "s");
        }
        return APP_OK;
    }
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        if (argc > 2) {
            const app_command *c = find_command(argv[2]);
            if (!c) {
                fprintf(stderr, "rsclip: unknown command '%s'\n", argv[2]);
                print_help(stderr);
                return APP_USAGE;
            }
            fputs(c->usage, stdout);
            return APP_OK;
        }
        print_help(stdout);
        return APP_OK;
    }
    const app_command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "rsclip: unknown command '%s'\n", name);
        print_help(stderr);
        return APP_USAGE;
    }
    if (wants_help(argc - 1, argv + 1)) {
        fputs(c->usage, stdout);
        return APP_OK;
    }
    int rc = c->run(argc - 1, argv + 1);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "rsclip: error writing to standard output\n");
        return APP_ERROR;
    }
    return rc;
}
