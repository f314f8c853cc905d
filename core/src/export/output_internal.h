/* Private: where an export may write (the rules of rsclip/export.h), and writing a new file
 * through a private temporary folder beside it that is renamed into place when complete. */
#ifndef RSCLIP_EXPORT_OUTPUT_INTERNAL_H
#define RSCLIP_EXPORT_OUTPUT_INTERNAL_H

#include <sys/stat.h>

/* A destination path, resolved. */
typedef struct rsclip__dest {
    const char *path; /* as given (for messages; borrowed) */
    char *real;       /* canonical: realpath of an existing target (links followed), else
                         realpath(folder)/name */
    char *folder;     /* canonical folder of real */
    const char *name; /* last component of real (points into real) */
    int exists;       /* something is there (a dangling symbolic link counts) */
    int is_dir;       /* it is a folder */
    int is_special;   /* it is a device, FIFO or socket (never written) */
    struct stat st;   /* of the existing target (links followed); zero otherwise */
} rsclip__dest;

/* Resolve path: RSCLIP_ERR_IO naming it when its folder does not exist. */
int rsclip__dest_resolve(const char *path, rsclip__dest *d);
void rsclip__dest_free(rsclip__dest *d); /* NULL-safe, idempotent */

/* RSCLIP_ERR_INVALID_ARG naming d->path when d is one of the protected paths, one of their
 * companions, or an index file inside a protected folder (see rsclip/export.h). */
int rsclip__dest_check_protected(const rsclip__dest *d, const char *const *prot, int n_prot);

/* RSCLIP_ERR_INVALID_ARG naming d->path when it is something rsclip never replaces whole: a
 * folder, a device, a FIFO or a socket. */
int rsclip__dest_check_replaceable(const rsclip__dest *d);

/* A new private folder (mode 0700) in d's folder: *tmp is a new string (free()). */
int rsclip__tmpdir_new(const rsclip__dest *d, char **tmp);

/* Install what tmp holds: fsync every entry, then rename each onto d's folder under the same
 * name (the one named d->name last), fsync the folder, and remove tmp. Every destination is
 * checked against the protected paths and, without overwrite, must not exist (checked again at
 * the rename: RENAME_NOREPLACE); a file that replaces another takes its permission bits (a private
 * file stays private). old_files (NULL-terminated, may be NULL): files of the dataset
 * being replaced, removed afterwards unless a new file took their name (a shapefile's stale
 * .qix). On failure nothing of tmp is left behind and an error names d->path. */
int rsclip__tmpdir_commit(const char *tmp, const rsclip__dest *d, int overwrite,
                          const char *const *prot, int n_prot, char **old_files);

/* Remove tmp and everything in it (a failed export). NULL-safe. */
void rsclip__tmpdir_remove(const char *tmp);

#endif
