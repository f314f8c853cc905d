/* Read-only access to an index: searching never needs write access to the file or its folder.
 *
 * A WAL-mode SQLite file can be read only by a process that can open (or create) its -shm file
 * beside it: in a read-only folder, on a read-only mount or in another user's folder, a plain
 * read-only open fails with "attempt to write a readonly database". Two measures:
 *
 * 1. A writer that closes cleanly leaves the file in rollback-journal mode (rsclip__idx_leave_wal),
 * when no other connection has it open: such a file is read with nothing but read access. The next
 *    writer switches it back to WAL (readers alongside a writer keep working as before).
 *
 * 2. A file left in WAL mode (an index written before this rule, a writer killed, a reader that was
 *    open when the writer closed) whose -shm file is missing and cannot be created is reopened with
 *    SQLite's immutable=1, which reads without locks. That is safe only when no writer can change
 *    the file meanwhile, and here none can be running: any WAL connection (reader or writer) has
 *    the -shm file, and it is missing; a new writer needs write access to the folder, which on a
 *    read-only mount nobody has. The one case left, the folder's owner starting a writer while
 *    we read, is caught: every read transaction of an immutable handle ends by comparing the file
 *    (device, inode, size, mtime, ctime) and the absence of a -wal file with what they were at
 *    open, and fails with RSCLIP_ERR_IO ("changed while it was read") instead of returning what
 *    it read. A -wal file that holds changes (a writer killed in that folder) is not skipped
 *    silently: the open fails, saying that the index must be opened once with write access. */
#include "base/base.h"
#include "index/index_internal.h"
#include "status/status_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* path + suffix as a new string. */
static char *with_suffix(const char *path, const char *suffix) {
    size_t a = strlen(path), b = strlen(suffix);
    char *s = rsclip__malloc(a + b + 1);
    if (s) {
        memcpy(s, path, a);
        memcpy(s + a, suffix, b + 1);
    }
    return s;
}

/* Size of path + suffix: -1 if it does not exist, -2 if it cannot be told. */
static long long side_file_size(const char *path, const char *suffix) {
    char *p = with_suffix(path, suffix);
    if (!p) return -2;
    struct stat st;
    long long r = stat(p, &st) == 0 ? (long long)st.st_size : errno == ENOENT ? -1 : -2;
    free(p);
    return r;
}

/* The database header says WAL mode (file format read/write versions 2). */
static int header_says_wal(const char *path) {
    unsigned char h[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return 0;
    ssize_t n = pread(fd, h, sizeof h, 0);
    close(fd);
    return n == (ssize_t)sizeof h && h[18] == 2 && h[19] == 2;
}

static int file_id(const char *path, uint64_t id[5]) {
    struct stat st;
    if (stat(path, &st) != 0) return 1;
    id[0] = (uint64_t)st.st_dev;
    id[1] = (uint64_t)st.st_ino;
    id[2] = (uint64_t)st.st_size;
    id[3] = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    id[4] = (uint64_t)st.st_ctim.tv_sec * 1000000000u + (uint64_t)st.st_ctim.tv_nsec;
    return 0;
}

/* "file:" URI of path with immutable=1: '%', '?', '#' and bytes outside printable ASCII are
 * percent-encoded; an absolute path gets an empty authority ("file:///..."). */
static char *immutable_uri(const char *path) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    char *u = rsclip__malloc(3 * n + 32);
    if (!u) return NULL;
    char *o = u;
    o += sprintf(o, "file:%s", path[0] == '/' ? "//" : "");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p == '%' || *p == '?' || *p == '#' || *p <= 0x20 || *p >= 0x7f) {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        } else {
            *o++ = (char)*p;
        }
    }
    strcpy(o, "?immutable=1");
    return u;
}

int rsclip__idx_readonly_fallback(rsclip_index *idx) {
    const int failed = rsclip_last_status();
    const int code = sqlite3_extended_errcode(idx->db) & 0xff;
    if (code != SQLITE_READONLY && code != SQLITE_CANTOPEN && code != SQLITE_IOERR) return failed;
    if (!header_says_wal(idx->path) || side_file_size(idx->path, "-shm") != -1) return failed;
    long long wal = side_file_size(idx->path, "-wal");
    if (wal > 0 || wal == -2)
        return rsclip__error(RSCLIP_ERR_IO,
                             "%s: cannot be read from here: its write-ahead log %s-wal holds "
                             "changes that only a process with write access to the folder can fold "
                             "in; open the index once with write access (e.g. `rsclip info` as its "
                             "owner)",
                             idx->path, idx->path);
    char *uri = immutable_uri(idx->path);
    if (!uri) return rsclip__error(RSCLIP_ERR_NOMEM, "%s: out of memory", idx->path);
    sqlite3_close_v2(idx->db);
    idx->db = NULL;
    if (file_id(idx->path, idx->file_id) != 0) {
        free(uri);
        return rsclip__error(RSCLIP_ERR_IO, "%s: %s", idx->path, strerror(errno));
    }
    int rc = rsclip__idx_connect(idx, uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI);
    free(uri);
    if (rc) return rc;
    idx->immutable = 1;
    rsclip_clear_error();
    rsclip__log(RSCLIP_LOG_DEBUG, "%s: no write access beside the file: read without locks",
                idx->path);
    return RSCLIP_OK;
}

int rsclip__idx_immutable_check(rsclip_index *idx) {
    uint64_t now[5];
    int same = file_id(idx->path, now) == 0 && memcmp(now, idx->file_id, sizeof now) == 0 &&
               side_file_size(idx->path, "-wal") == -1;
    if (same) return RSCLIP_OK;
    return rsclip__error(RSCLIP_ERR_IO,
                         "%s: the index changed while it was read (it is read without locks, "
                         "having no write access beside it): run the search again",
                         idx->path);
}

void rsclip__idx_leave_wal(rsclip_index *idx) {
    sqlite3_busy_timeout(idx->db, 0);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(idx->db, "PRAGMA journal_mode = DELETE", -1, &st, NULL) == SQLITE_OK)
        (void)sqlite3_step(st); /* SQLITE_BUSY while another connection is open: stays WAL */
    sqlite3_finalize(st);
}
