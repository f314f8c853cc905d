/*
 * rsclip_layers.cpp -- the tiles, hits, changes and regions layers (read-only, WGS84 lon/lat).
 */
#include "gdal_rsclip.h"

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>
#include <exception>
#include <iterator>
#include <limits>
#include <memory>

/* Every entry point GDAL calls is wrapped: a C++ exception becomes one CPLError. */
#define RSCLIP_GUARD(where, fail_value)                                                            \
    catch (const std::exception &e) {                                                              \
        RSCLIPReportException(where, &e);                                                          \
        return fail_value;                                                                         \
    }                                                                                              \
    catch (...) {                                                                                  \
        RSCLIPReportException(where, nullptr);                                                     \
        return fail_value;                                                                         \
    }

struct FieldSpec {
    const char *name;
    OGRFieldType type;
};

static void AddFields(OGRFeatureDefn *defn, const FieldSpec *f, size_t n) {
    for (size_t i = 0; i < n; i++) {
        OGRFieldDefn fd(f[i].name, f[i].type);
        defn->AddFieldDefn(&fd);
    }
}

/* A WGS84 polygon from a closed or open lon/lat ring; nullptr when there are < 3 points. */
static OGRPolygon *RingToPolygon(const double *xy, size_t n) {
    if (!xy || n < 3 || n > static_cast<size_t>(INT_MAX)) return nullptr;
    auto *ring = new OGRLinearRing();
    ring->setNumPoints(static_cast<int>(n), FALSE);
    for (size_t i = 0; i < n; i++) ring->setPoint(static_cast<int>(i), xy[2 * i], xy[2 * i + 1]);
    ring->closeRings();
    auto *poly = new OGRPolygon();
    poly->addRingDirectly(ring);
    return poly;
}

/* A text field, null when the library has no value (NULL). */
static void SetTextOrNull(OGRFeature *f, const char *pszField, const char *pszValue) {
    if (pszValue)
        f->SetField(pszField, pszValue);
    else
        f->SetFieldNull(f->GetFieldIndex(pszField));
}

/* lon/lat of a tile centre: null for a scene in pixel coordinates (NaN from the library). */
static void SetLonLat(OGRFeature *f, double lon, double lat) {
    if (std::isfinite(lon) && std::isfinite(lat)) {
        f->SetField("lon", lon);
        f->SetField("lat", lat);
    } else {
        f->SetFieldNull(f->GetFieldIndex("lon"));
        f->SetFieldNull(f->GetFieldIndex("lat"));
    }
}

/* ---- base ------------------------------------------------------------------------------------ */

RSCLIPLayer::RSCLIPLayer(RSCLIPDataset *poDS, const char *pszName, OGRwkbGeometryType eType)
    : m_poDS(poDS) {
    m_poDefn = new OGRFeatureDefn(pszName);
    m_poDefn->Reference();
    m_poDefn->SetGeomType(eType);
    m_poDefn->GetGeomFieldDefn(0)->SetSpatialRef(poDS->WGS84());
    SetDescription(pszName);
}

RSCLIPLayer::~RSCLIPLayer() {
    m_poDefn->Release();
}

OGRFeature *RSCLIPLayer::GetNextFeature() {
    try {
        while (true) {
            std::unique_ptr<OGRFeature> f(GetNextRawFeature());
            if (!f) return nullptr;
            if ((!m_poFilterGeom || FilterGeometry(f->GetGeomFieldRef(m_iGeomFieldFilter))) &&
                (!m_poAttrQuery || m_poAttrQuery->Evaluate(f.get())))
                return f.release();
        }
    }
    RSCLIP_GUARD("reading a feature", nullptr)
}

/* What SetNextByIndex answers for an index with no feature: GDAL changed it in 3.12. */
#if GDAL_VERSION_NUM >= GDAL_COMPUTE_VERSION(3, 12, 0)
static const OGRErr kNoSuchIndex = OGRERR_NON_EXISTING_FEATURE;
#else
static const OGRErr kNoSuchIndex = OGRERR_FAILURE;
#endif

/* As OGRLayer's: the n-th feature through the filters, a jump without filters; an index with no
 * feature (negative, past the end) ends the reading. */
OGRErr RSCLIPLayer::SetNextByIndex(GIntBig nIndex) {
    try {
        const GIntBig kEnd = std::numeric_limits<GIntBig>::max();
        if (nIndex < 0) {
            m_iNext = kEnd;
            return kNoSuchIndex;
        }
        if (!Filtered()) {
            const GIntBig n = RawCount();
            if (n < 0) return OGRERR_FAILURE;
            m_iNext = nIndex > n ? kEnd : nIndex;
            return nIndex > n ? kNoSuchIndex : OGRERR_NONE;
        }
        ResetReading();
        for (GIntBig i = 0; i < nIndex; i++) {
            std::unique_ptr<OGRFeature> f(GetNextFeature());
            if (!f) {
                m_iNext = kEnd;
                return kNoSuchIndex;
            }
        }
        return OGRERR_NONE;
    }
    RSCLIP_GUARD("SetNextByIndex", OGRERR_FAILURE)
}

/* Through the filters when there are any, without moving the reading position. */
GIntBig RSCLIPLayer::GetFeatureCount(int) {
    try {
        if (!Filtered()) return RawCount();
        const GIntBig iSaved = m_iNext;
        m_iNext = 0;
        GIntBig n = 0;
        for (OGRFeature *f; (f = GetNextFeature()) != nullptr; n++) delete f;
        m_iNext = iSaved;
        return n;
    }
    RSCLIP_GUARD("GetFeatureCount", -1)
}

OGRErr RSCLIPLayer::GetExtent(OGREnvelope *psExtent, int) {
    try {
        if (!m_bExtentDone) {
            m_bHasExtent = ComputeExtent(&m_sExtent);
            m_bExtentDone = true;
        }
        if (!m_bHasExtent) return OGRERR_FAILURE;
        *psExtent = m_sExtent;
        return OGRERR_NONE;
    }
    RSCLIP_GUARD("GetExtent", OGRERR_FAILURE)
}

/* The two-argument form (OGRLayer's) checks the field index and comes here for field 0. */
void RSCLIPLayer::SetSpatialFilter(OGRGeometry *poGeom) {
    try {
        OGRLayer::SetSpatialFilter(poGeom);
        ResetReading();
        FilterChanged();
    } catch (const std::exception &e) {
        RSCLIPReportException("SetSpatialFilter", &e);
    } catch (...) {
        RSCLIPReportException("SetSpatialFilter", nullptr);
    }
}

int RSCLIPLayer::TestCapability(const char *pszCap) {
    if (EQUAL(pszCap, OLCFastFeatureCount) || EQUAL(pszCap, OLCFastSetNextByIndex))
        return !Filtered();
    return EQUAL(pszCap, OLCRandomRead) || EQUAL(pszCap, OLCFastGetExtent) ||
           EQUAL(pszCap, OLCStringsAsUTF8);
}

OGRErr RSCLIPLayer::ReadOnly(const char *what) {
    CPLError(CE_Failure, CPLE_NotSupported,
             "RSCLIP: layer '%s' is read-only (%s is not supported): it shows the index and the "
             "query, change them with the rsclip command",
             m_poDefn->GetName(), what);
    return OGRERR_UNSUPPORTED_OPERATION;
}

OGRErr RSCLIPLayer::ISetFeature(OGRFeature *) {
    return ReadOnly("SetFeature");
}
OGRErr RSCLIPLayer::ICreateFeature(OGRFeature *) {
    return ReadOnly("CreateFeature");
}
OGRErr RSCLIPLayer::IUpsertFeature(OGRFeature *) {
    return ReadOnly("UpsertFeature");
}
OGRErr RSCLIPLayer::DeleteFeature(GIntBig) {
    return ReadOnly("DeleteFeature");
}
OGRErr RSCLIPLayer::CreateField(OGRFieldDefn *, int) {
    return ReadOnly("CreateField");
}
OGRErr RSCLIPLayer::DeleteField(int) {
    return ReadOnly("DeleteField");
}
OGRErr RSCLIPLayer::ReorderFields(int *) {
    return ReadOnly("ReorderFields");
}
OGRErr RSCLIPLayer::AlterFieldDefn(int, OGRFieldDefn *, int) {
    return ReadOnly("AlterFieldDefn");
}
OGRErr RSCLIPLayer::CreateGeomField(OGRGeomFieldDefn *, int) {
    return ReadOnly("CreateGeomField");
}

/* ---- tiles ----------------------------------------------------------------------------------- */

static const FieldSpec kTileFields[] = {
    {"scene", OFTString}, {"scene_id", OFTInteger64}, {"xoff", OFTInteger},
    {"yoff", OFTInteger}, {"xsize", OFTInteger},      {"ysize", OFTInteger},
    {"lon", OFTReal},     {"lat", OFTReal},           {"valid_fraction", OFTReal},
};

RSCLIPTilesLayer::RSCLIPTilesLayer(RSCLIPDataset *poDS) : RSCLIPLayer(poDS, "tiles", wkbPolygon) {
    AddFields(m_poDefn, kTileFields, sizeof kTileFields / sizeof *kTileFields);
}

/* The candidates, in id order over every part: the R-tree's answer for the spatial filter's
 * envelope (tiles in pixel coordinates have no footprint and meet no filter), else the tiles of
 * the scene, or of every scene. */
bool RSCLIPTilesLayer::LoadIds() {
    m_oIds.clear();
    bool ok = true;
    const GIntBig nScene = m_poDS->m_nSceneId;
    if (m_poFilterGeom) {
        const OGREnvelope &e = m_sFilterEnvelope;
        const double bb[4] = {e.MinX, e.MinY, e.MaxX, e.MaxY};
        /* an envelope with NaN meets nothing */
        if (bb[0] <= bb[2] && bb[1] <= bb[3]) ok = m_poDS->TilesInBBox(bb, m_oIds);
        if (ok && nScene > 0) {
            RSCLIPTileList oScene;
            ok = m_poDS->SceneTiles(nScene, oScene);
            if (ok) m_oIds.Intersect(oScene);
        }
    } else if (nScene > 0) {
        ok = m_poDS->SceneTiles(nScene, m_oIds);
    } else {
        ok = m_poDS->AllTiles(m_oIds);
    }
    if (!ok) { /* reported */
        m_oIds.clear();
        return false;
    }
    m_bIdsValid = true;
    return true;
}

/* The feature of one tile (from part iPart, or -1: the part that holds it); *bNotFound set when
 * the index has no such tile. */
static OGRFeature *TileFeature(RSCLIPDataset *poDS, OGRFeatureDefn *defn, GIntBig nFID, int iPart,
                               GIntBig nSceneOnly, bool *pbNotFound) {
    *pbNotFound = false;
    rsclip_tile_info *t = nullptr;
    int rc = poDS->GetTile(nFID, iPart, &t);
    if (rc == RSCLIP_ERR_NOT_FOUND ||
        (rc == RSCLIP_OK && nSceneOnly > 0 && t->scene_id != nSceneOnly)) {
        rsclip_free(t);
        rsclip_clear_error();
        *pbNotFound = true;
        return nullptr;
    }
    if (rc != RSCLIP_OK) {
        RSCLIPReportError(nullptr);
        return nullptr;
    }
    auto *f = new OGRFeature(defn);
    f->SetFID(t->id);
    f->SetField("scene", poDS->ScenePath(t->scene_id));
    f->SetField("scene_id", static_cast<GIntBig>(t->scene_id));
    f->SetField("xoff", t->window.xoff);
    f->SetField("yoff", t->window.yoff);
    f->SetField("xsize", t->window.xsize);
    f->SetField("ysize", t->window.ysize);
    SetLonLat(f, t->lon, t->lat);
    f->SetField("valid_fraction", t->valid_fraction);
    OGRPolygon *poly = RingToPolygon(t->footprint, t->n_footprint);
    if (poly) {
        poly->assignSpatialReference(poDS->WGS84());
        f->SetGeometryDirectly(poly);
    }
    rsclip_free(t);
    return f;
}

OGRFeature *RSCLIPTilesLayer::GetNextRawFeature() {
    if (!m_bIdsValid && !LoadIds()) return nullptr;
    while (m_iNext < static_cast<GIntBig>(m_oIds.size())) {
        const size_t i = static_cast<size_t>(m_iNext++);
        bool bNotFound = false;
        OGRFeature *f = TileFeature(m_poDS, m_poDefn, m_oIds.anIds[i], m_oIds.Part(i),
                                    m_poDS->m_nSceneId, &bNotFound);
        if (!bNotFound) return f; /* nullptr: an error, already reported */
        /* else deleted since the ids were read: the next one */
    }
    return nullptr;
}

/* The whole index: the tiles of every part (kept by each part, no scan). */
GIntBig RSCLIPTilesLayer::RawCount() {
    if (m_poDS->m_nSceneId <= 0) return m_poDS->m_sInfo.n_tiles;
    if (!m_bIdsValid && !LoadIds()) return -1;
    return static_cast<GIntBig>(m_oIds.size());
}

OGRFeature *RSCLIPTilesLayer::GetFeature(GIntBig nFID) {
    try {
        bool bNotFound = false;
        return TileFeature(m_poDS, m_poDefn, nFID, -1, m_poDS->m_nSceneId, &bNotFound);
    }
    RSCLIP_GUARD("GetFeature", nullptr)
}

/* The index's extent (kept by each part; their union), or the envelope of one scene's tiles. */
bool RSCLIPTilesLayer::ComputeExtent(OGREnvelope *psExtent) {
    if (m_poDS->m_nSceneId <= 0) {
        if (!m_poDS->m_sInfo.has_extent) return false;
        psExtent->MinX = m_poDS->m_sInfo.extent[0];
        psExtent->MinY = m_poDS->m_sInfo.extent[1];
        psExtent->MaxX = m_poDS->m_sInfo.extent[2];
        psExtent->MaxY = m_poDS->m_sInfo.extent[3];
        return true;
    }
    RSCLIPTileList oIds;
    if (!m_poDS->SceneTiles(m_poDS->m_nSceneId, oIds)) return false;
    OGREnvelope env;
    for (size_t i = 0; i < oIds.size(); i++) {
        rsclip_tile_info *t = nullptr;
        if (m_poDS->GetTile(oIds.anIds[i], oIds.Part(i), &t) != RSCLIP_OK) {
            RSCLIPReportError(m_poDS->m_osPath.c_str());
            rsclip_free(t);
            return false;
        }
        if (t->has_lonlat && t->n_footprint >= 3) {
            env.Merge(t->bbox[0], t->bbox[1]);
            env.Merge(t->bbox[2], t->bbox[3]);
        }
        rsclip_free(t);
    }
    if (!env.IsInit()) return false;
    *psExtent = env;
    return true;
}

int RSCLIPTilesLayer::TestCapability(const char *pszCap) {
    if (EQUAL(pszCap, OLCFastSpatialFilter)) return TRUE; /* the R-tree */
    return RSCLIPLayer::TestCapability(pszCap);
}

/* ---- hits, changes and regions -------------------------------------------------------------- */

/* The same properties, in the same order, as rsclip_export_hits / _changes / _regions. */
static const FieldSpec kHitFields[] = {
    {"rank", OFTInteger},      {"score", OFTReal},
    {"prob", OFTReal},         {"lon", OFTReal},
    {"lat", OFTReal},          {"scene", OFTString},
    {"xoff", OFTInteger},      {"yoff", OFTInteger},
    {"xsize", OFTInteger},     {"ysize", OFTInteger},
    {"tile_id", OFTInteger64}, {"datetime", OFTString},
    {"stac_item", OFTString},  {"stac_collection", OFTString},
};
static const FieldSpec kChangeFields[] = {
    {"rank", OFTInteger},
    {"rise", OFTReal},
    {"prob", OFTReal},
    {"prob_from", OFTReal},
    {"coverage", OFTReal},
    {"from_tiles", OFTInteger},
    {"tile_id", OFTInteger64},
    {"from_tile_id", OFTInteger64},
    {"datetime", OFTString},
    {"from_datetime", OFTString},
    {"lon", OFTReal},
    {"lat", OFTReal},
    {"scene", OFTString},
    {"from_scene", OFTString},
    {"xoff", OFTInteger},
    {"yoff", OFTInteger},
    {"xsize", OFTInteger},
    {"ysize", OFTInteger},
    {"stac_item", OFTString},
    {"from_stac_item", OFTString},
    {"stac_collection", OFTString},
};
/* The regions of a change query add max_rise and mean_rise. */
static const FieldSpec kRegionFields[] = {
    {"region", OFTInteger}, {"tiles", OFTInteger},  {"max_prob", OFTReal},
    {"mean_prob", OFTReal}, {"max_score", OFTReal}, {"area_m2", OFTReal},
    {"lon", OFTReal},       {"lat", OFTReal},       {"best_tile", OFTInteger64},
};
static const FieldSpec kRegionRiseFields[] = {
    {"max_rise", OFTReal},
    {"mean_rise", OFTReal},
};

static const char *KindName(RSCLIPHitsLayer::Kind e) {
    return e == RSCLIPHitsLayer::Kind::Regions   ? "regions"
           : e == RSCLIPHitsLayer::Kind::Changes ? "changes"
                                                 : "hits";
}

RSCLIPHitsLayer::RSCLIPHitsLayer(RSCLIPDataset *poDS, Kind eKind)
    : RSCLIPLayer(poDS, KindName(eKind), eKind == Kind::Regions ? wkbMultiPolygon : wkbPolygon),
      m_eKind(eKind) {
    switch (eKind) {
    case Kind::Regions: {
        AddFields(m_poDefn, kRegionFields, sizeof kRegionFields / sizeof *kRegionFields);
        /* as rsclip_export_regions: the rise fields when a region has a rise */
        bool bRise = false;
        for (int i = 0; i < poDS->m_nRegions; i++) bRise |= poDS->m_pasRegions[i].has_rise != 0;
        if (bRise)
            AddFields(m_poDefn, kRegionRiseFields,
                      sizeof kRegionRiseFields / sizeof *kRegionRiseFields);
        break;
    }
    case Kind::Changes:
        AddFields(m_poDefn, kChangeFields, sizeof kChangeFields / sizeof *kChangeFields);
        break;
    case Kind::Hits:
        AddFields(m_poDefn, kHitFields, sizeof kHitFields / sizeof *kHitFields);
        break;
    }
}

int RSCLIPHitsLayer::Count() const {
    switch (m_eKind) {
    case Kind::Regions:
        return m_poDS->m_nRegions;
    case Kind::Changes:
        return m_poDS->m_psChanges ? m_poDS->m_psChanges->n : 0;
    case Kind::Hits:
        break;
    }
    return m_poDS->m_psHits ? m_poDS->m_psHits->n : 0;
}

/* The footprint of a hit as a WGS84 polygon, on f. */
static void SetFootprint(OGRFeature *f, const rsclip_hit *h, OGRSpatialReference *srs) {
    OGRPolygon *poly = RingToPolygon(h->footprint, static_cast<size_t>(h->n_footprint));
    if (poly) {
        poly->assignSpatialReference(srs);
        f->SetGeometryDirectly(poly);
    }
}

/* Feature i (0-based); FID i + 1: the rank, or the region number. */
OGRFeature *RSCLIPHitsLayer::Make(int i) {
    auto *f = new OGRFeature(m_poDefn);
    OGRSpatialReference *srs = m_poDS->WGS84();
    f->SetFID(i + 1);
    if (m_eKind == Kind::Changes) {
        const rsclip_change *c = &m_poDS->m_psChanges->changes[i];
        f->SetField("rank", c->rank);
        f->SetField("rise", static_cast<double>(c->rise));
        f->SetField("prob", static_cast<double>(c->to.prob));
        f->SetField("prob_from", static_cast<double>(c->prob_from));
        f->SetField("coverage", c->coverage);
        f->SetField("from_tiles", c->n_from);
        f->SetField("tile_id", static_cast<GIntBig>(c->to.tile_id));
        f->SetField("from_tile_id", static_cast<GIntBig>(c->from.tile_id));
        SetTextOrNull(f, "datetime", c->to.datetime);
        SetTextOrNull(f, "from_datetime", c->from.datetime);
        SetLonLat(f, c->to.lon, c->to.lat);
        f->SetField("scene", m_poDS->ScenePath(c->to.scene_id));
        f->SetField("from_scene", m_poDS->ScenePath(c->from.scene_id));
        f->SetField("xoff", c->to.xoff);
        f->SetField("yoff", c->to.yoff);
        f->SetField("xsize", c->to.xsize);
        f->SetField("ysize", c->to.ysize);
        SetTextOrNull(f, "stac_item", c->to.stac_item);
        SetTextOrNull(f, "from_stac_item", c->from.stac_item);
        SetTextOrNull(f, "stac_collection", c->to.stac_collection);
        SetFootprint(f, &c->to, srs);
    } else if (m_eKind == Kind::Regions) {
        const rsclip_region *r = &m_poDS->m_pasRegions[i];
        f->SetField("region", r->id);
        f->SetField("tiles", r->n_tiles);
        f->SetField("max_prob", static_cast<double>(r->max_prob));
        f->SetField("mean_prob", static_cast<double>(r->mean_prob));
        f->SetField("max_score", static_cast<double>(r->max_score));
        f->SetField("area_m2", r->area_m2);
        f->SetField("lon", r->lon);
        f->SetField("lat", r->lat);
        f->SetField("best_tile", static_cast<GIntBig>(r->best_tile_id));
        if (m_poDefn->GetFieldIndex("max_rise") >= 0) {
            if (r->has_rise) {
                f->SetField("max_rise", static_cast<double>(r->max_rise));
                f->SetField("mean_rise", static_cast<double>(r->mean_rise));
            } else {
                f->SetFieldNull(f->GetFieldIndex("max_rise"));
                f->SetFieldNull(f->GetFieldIndex("mean_rise"));
            }
        }
        OGRGeometry *g = nullptr;
        if (r->wkt && OGRGeometryFactory::createFromWkt(r->wkt, nullptr, &g) == OGRERR_NONE && g) {
            g = OGRGeometryFactory::forceToMultiPolygon(g);
            g->assignSpatialReference(srs);
            f->SetGeometryDirectly(g);
        }
    } else {
        const rsclip_hit *h = &m_poDS->m_psHits->hits[i];
        f->SetField("rank", h->rank);
        f->SetField("score", static_cast<double>(h->score));
        f->SetField("prob", static_cast<double>(h->prob));
        SetLonLat(f, h->lon, h->lat);
        f->SetField("scene", m_poDS->ScenePath(h->scene_id));
        f->SetField("xoff", h->xoff);
        f->SetField("yoff", h->yoff);
        f->SetField("xsize", h->xsize);
        f->SetField("ysize", h->ysize);
        f->SetField("tile_id", static_cast<GIntBig>(h->tile_id));
        SetTextOrNull(f, "datetime", h->datetime);
        SetTextOrNull(f, "stac_item", h->stac_item);
        SetTextOrNull(f, "stac_collection", h->stac_collection);
        SetFootprint(f, h, srs);
    }
    return f;
}

OGRFeature *RSCLIPHitsLayer::GetNextRawFeature() {
    if (m_iNext >= Count()) return nullptr;
    return Make(static_cast<int>(m_iNext++));
}

OGRFeature *RSCLIPHitsLayer::GetFeature(GIntBig nFID) {
    try {
        if (nFID < 1 || nFID > Count()) return nullptr;
        return Make(static_cast<int>(nFID - 1));
    }
    RSCLIP_GUARD("GetFeature", nullptr)
}

bool RSCLIPHitsLayer::ComputeExtent(OGREnvelope *psExtent) {
    OGREnvelope env;
    for (int i = 0; i < Count(); i++) {
        std::unique_ptr<OGRFeature> f(Make(i));
        if (const OGRGeometry *g = f->GetGeometryRef()) {
            OGREnvelope e;
            g->getEnvelope(&e);
            env.Merge(e);
        }
    }
    if (!env.IsInit()) return false;
    *psExtent = env;
    return true;
}
