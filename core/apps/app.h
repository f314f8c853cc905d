/* Private header of the rsclip command-line tool: the command table's entry type, messages and
 * exit codes, and the small helpers every command shares (model loading, JSON output, progress).
 *
 * Conventions (GDAL-like): results on stdout, everything else on stderr as one line
 * "rsclip: <file>: <problem>"; exit 0 ok, 1 error, 2 usage. */
#ifndef RSCLIP_APP_H
#define RSCLIP_APP_H

#include "rsclip/rsclip.h"

#include <stdint.h>
#include <stdio.h>

#define APP_OK 0
#define APP_ERROR 1
#define APP_USAGE 2

/* A command: run(argc, argv) gets argv[0] = the command name. usage is printed by
 * `rsclip CMD --help` and `rsclip help CMD`. */
typedef struct app_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
} app_command;

/* Commands (one file each: cmd_<name>.c). New commands add a declaration here and a row in the
 * table in rsclip.c. */
int cmd_tokenize(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_remove(int argc, char **argv);
extern const char app_usage_tokenize[];
extern const char app_usage_embed[];
extern const char app_usage_classify[];
extern const char app_usage_model[];
extern const char app_usage_index[];
extern const char app_usage_search[];
extern const char app_usage_info[];
extern const char app_usage_remove[];

/* Delete the scenes of INDEX whose local files are gone, in one transaction (cmd_remove.c). */
int app_prune(const char *index, int quiet);

/* "rsclip: <message>" on stderr; returns APP_ERROR. */
int app_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "rsclip: <rsclip_last_error()>"; returns APP_ERROR. */
int app_fail(void);
/* "rsclip CMD: <message>" + a hint to --help on stderr; returns APP_USAGE. */
int app_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Install the log sink that prints library warnings (and, with RSCLIP_LOG=info|debug, more) to
 * stderr. */
void app_install_log(void);

/* Report getopt_long's '?' (unknown option) or ':' (missing value) for argv; returns APP_USAGE. */
int app_bad_option(const char *cmd, int ch, char **argv);

/* Parse a positive int option value; 0 on success, APP_USAGE after printing an error. */
int app_parse_int(const char *cmd, const char *opt, const char *s, int min, int max, int *out);

/* Resolve -m (rsclip_hub_resolve) and load the model; prints the error and returns APP_ERROR. */
int app_load_model(const char *name, rsclip_model **out);

/* JSON output helpers. */
void app_json_string(FILE *f, const char *s); /* quoted, escaped; invalid UTF-8 -> U+FFFD */
void app_json_float(FILE *f, float v);        /* %.9g (round-trips), null if not finite */

/* Read + preprocess one image into px[3*S*S]; prints the error and returns APP_ERROR. */
int app_image_pixels(const rsclip_model *m, const char *path, float *px);

/* GDAL-style progress on stderr: "<label> 0...10...20...30...40...50...60...70...80...90...100 -
 * done." One app_progress per line of output; feed it app_progress_update. */
typedef struct app_progress {
    FILE *f;
    char label[256];
    int ticks; /* number of 2.5 % ticks printed */
    int open;  /* a line is in progress */
} app_progress;

void app_progress_update(app_progress *p, const char *label, double frac);
void app_progress_finish(app_progress *p);

#endif
