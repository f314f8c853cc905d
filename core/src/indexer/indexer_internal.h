/* Private declarations of the indexing pipeline: the messages the reader thread (indexer_read.c)
 * sends to the writer (indexer.c, the calling thread), the queue they travel on and the state both
 * share. */
#ifndef RSCLIP_INDEXER_INTERNAL_H
#define RSCLIP_INDEXER_INTERNAL_H

#include "rsclip/index.h"
#include "rsclip/indexer.h"
#include "rsclip/model.h"

#include <pthread.h>
#include <stdatomic.h>

#define N_BATCH_BUFFERS 3 /* one being filled, one queued, one being encoded */

typedef struct batch {
    int n;
    float *pixels;            /* [cap, 3, S, S] */
    rsclip_tile_record *recs; /* [cap] */
    double *rings;            /* [cap, RSCLIP_TILER_MAX_RING, 2] */
} batch;

enum {
    MSG_SCENE_BEGIN,
    MSG_BATCH,
    MSG_SCENE_END,
    MSG_SCENE_FAIL,
    MSG_SCENE_SKIP,
    MSG_SCENE_TIME, /* an unchanged scene whose time or STAC fields changed: update them */
    MSG_DONE
};

typedef struct msg {
    int kind;
    int scene_no; /* 0-based input number */
    batch *b;     /* MSG_BATCH */
    /* MSG_SCENE_BEGIN: what the index records about the scene (strings owned by the message) */
    rsclip_scene_info scene;
    char *path, *checksum, *crs_wkt, *bands, *scaling, *settings;
    char *time[7];       /* datetime, start, end, source, stac item, collection, asset (or NULL) */
    int64_t scene_id;    /* MSG_SCENE_TIME */
    int force;           /* replace what the index holds (file or settings changed) */
    int64_t tiles_to_do; /* tiles this run will read (not yet stored) */
    int64_t skipped;     /* MSG_SCENE_END: tiles below min_valid */
    char *error;         /* MSG_SCENE_FAIL */
    char *note;          /* MSG_SCENE_BEGIN: why it is re-indexed, band guesses (may be NULL) */
} msg;

void rsclip__msg_free(msg *m);

/* A small blocking queue of pointers. */
typedef struct queue {
    void *items[16];
    int head, count, cap;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
} queue;

void rsclip__q_push(queue *q, void *p);
void *rsclip__q_pop(queue *q);

/* One scene of the run: a whole raster, or (a shard of a plan) a range of its tiles with the ids
 * the plan gives them. */
typedef struct idx_job {
    const char *path;
    int64_t first, end; /* tile numbers [first, end) of the scene; end < 0: all of them */
    int64_t scene_id;   /* > 0: the scene's id (plan ordinal + 1) */
    int64_t first_fid;  /* > 0: tile i gets fid first_fid + i (global tile number + 1) */
    int64_t plan_size;  /* >= 0: file size, mtime and tile count the plan saw: a scene that */
    int64_t plan_mtime; /* changed since is refused (the split would no longer agree) */
    int64_t plan_tiles;
    const char *datetime, *stac_item, *stac_collection, *stac_asset; /* from a catalogue */
} idx_job;

typedef struct pipeline {
    const char *index_path;
    const idx_job *jobs;
    int n_jobs;
    const rsclip_indexer_params *params;
    rsclip_tiler_params tp;
    char settings[RSCLIP_TILER_SETTINGS_MAX]; /* tp as recorded per scene */
    const rsclip_model *model;
    int image_size, batch_cap;
    queue to_writer;    /* msg* */
    queue free_batches; /* batch* */
    atomic_int stop;    /* the writer asks the reader to stop (fatal error or cancel) */
    atomic_int dropped; /* 1 + the scene number the writer refused (stop reading it), 0: none */
    struct msg *done;   /* the reader's last message (MSG_DONE), allocated before it starts: the
                           writer waits for it, so it cannot be left to a failing allocation */
} pipeline;

/* The reader thread: for each input, decide what to do (skip, resume, replace), then read and
 * preprocess its tiles into batches for the writer. Ends with MSG_DONE. */
void *rsclip__indexer_reader(void *pipeline_arg);

#endif
