/* Private: which paths are an index's files. An index is a file plus the companions SQLite and
 * rsclip keep beside it (FILE-wal, FILE-shm, FILE-journal, FILE.rsvec): writing any of them
 * corrupts or misleads the index as surely as writing the file itself. Used by the merge (its
 * output is never one of its inputs) and by the export's output rule (rsclip/export.h). */
#ifndef RSCLIP_INDEX_FILES_H
#define RSCLIP_INDEX_FILES_H

#include <sys/stat.h>

/* Canonical form of a path that may not exist (its folder must): realpath when it exists, else
 * realpath(folder)/name. NULL when the folder does not exist (errno set) or on no memory;
 * free() the result. */
char *rsclip__path_canon(const char *path);

/* 1 when the path whose canonical form is real (st: its stat, or NULL when nothing is there)
 * names index file `index` or one of its companions, existing or not: by canonical name (under
 * the index's own name and its resolved one: SQLite finds the -wal beside either) and by device
 * and inode (hard links). */
int rsclip__path_is_index_file(const char *real, const struct stat *st, const char *index);

/* Delete an index file a run created and could not finish, with SQLite's companion files (-wal,
 * -shm, -journal). Only for files the caller itself created. */
void rsclip__idx_remove_files(const char *path);

#endif
