/*
 * rsclip/rsclip.h -- umbrella header of the rsclip C library.
 *
 * rsclip turns imagery into a searchable index: a GDAL tiler cuts rasters into model-sized tiles
 * with exact footprints, an embedded SigLIP encoder (Git-RSCLIP) embeds them, a SQLite/GeoPackage
 * index stores vectors and footprints, and text queries come back as ranked, georeferenced hits.
 * Each module has its own header; this one includes them all.
 */
#ifndef RSCLIP_RSCLIP_H
#define RSCLIP_RSCLIP_H

#include "rsclip/status.h"
#include "rsclip/safetensors.h"
#include "rsclip/tokenizer.h"
#include "rsclip/model.h"
#include "rsclip/hub.h"
#include "rsclip/export.h"
#include "rsclip/query.h"
#include "rsclip/indexer.h"
#include "rsclip/imageio.h"
#include "rsclip/index.h"
#include "rsclip/search.h"
#include "rsclip/tiler.h"
#include "rsclip/plan.h"
#include "rsclip/time.h"
#include "rsclip/render.h"

#endif
