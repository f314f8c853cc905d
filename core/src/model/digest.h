/* SHA-256 of weight files, and a small cache of those digests keyed by file version, so that a
 * checkpoint is hashed once per version, not once per process (private; used by the model loader
 * and by the hub, which seeds it with the digest of each file it downloads and verifies).
 *
 * The cache is one text file, <root>/.sha256-digests, root being $RSCLIP_CACHE, else
 * $XDG_CACHE_HOME/rsclip, else ~/.cache/rsclip:
 *     rsclip sha256 digests 1
 *     <dev> <ino> <size> <mtime s>.<ns> <ctime s>.<ns> <64 lowercase hex>
 * A file version is its device, inode, size, mtime and ctime: writing a file in place changes its
 * mtime and ctime (and ctime cannot be set back by anyone), replacing it changes the inode. An
 * entry is only stored for a file whose ctime is at least a second older than the moment its
 * hashing began (a write in the same timestamp tick could otherwise go unseen), unless the caller
 * vouches for it (the hub, which hashed the file it has just written under its lock). The file is
 * rewritten atomically (temporary file + rename), holds at most 256 entries (the newest), and is
 * ignored as a whole when anything in it is malformed; failing to write it only costs a rehash. */
#ifndef RSCLIP_MODEL_DIGEST_H
#define RSCLIP_MODEL_DIGEST_H

#include <stddef.h>
#include <sys/stat.h>

#define RSCLIP__SHA256_HEX 65 /* 64 hex digits + NUL */

/* SHA-256 of n bytes, as lowercase hex. */
void rsclip__sha256_hex(const void *p, size_t n, char out[RSCLIP__SHA256_HEX]);

/* Incremental SHA-256 (OpenSSL EVP underneath). */
typedef struct rsclip__sha256 rsclip__sha256;
rsclip__sha256 *rsclip__sha256_new(void); /* NULL on out of memory */
void rsclip__sha256_update(rsclip__sha256 *h, const void *p, size_t n);
void rsclip__sha256_final(rsclip__sha256 *h, char out[RSCLIP__SHA256_HEX]); /* and frees h */

/* SHA-256 of the whole file behind fd (read with pread from offset 0, st_size bytes). An error
 * naming path when it cannot be read or is shorter than st_size. */
int rsclip__sha256_fd(int fd, const char *path, off_t size, char out[RSCLIP__SHA256_HEX]);

/* The cached digest of the file version st: 1 and out filled, or 0. */
int rsclip__digest_lookup(const struct stat *st, char out[RSCLIP__SHA256_HEX]);

/* Remember hex for the file version st (best effort, never fails). hash_started: CLOCK_REALTIME
 * seconds when hashing began, or 0 when the caller vouches for the entry (see above). */
void rsclip__digest_store(const struct stat *st, const char *hex, double hash_started);

/* Wall-clock time (CLOCK_REALTIME) in seconds, for hash_started. */
double rsclip__digest_now(void);

#endif
