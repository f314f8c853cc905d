/*
 * rsclip_layers.cpp -- the tiles, hits and regions layers (read-only, WGS84 lon/lat).
 */
#include "gdal_rsclip.h"

#include <cfloat>
#include <cstring>
#include <exception>

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
    if (!xy || n < 3) return nullptr;
    auto *ring = new OGRLinearRing();
    ring->setNumPoints(static_cast<int>(n), FALSE);
    for (size_t i = 0; i < n; i++) ring->setPoint(static_cast<int>(i), xy[2 * i], xy[2 * i + 1]);
    ring->closeRings();
    auto *poly = new OGRPolygon();
    poly->addRingDirectly(ring);
    return poly;
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
            OGRFeature *f = GetNextRawFeature();
            if (!f) return nullptr;
            if (!m_poAttrQuery || m_poAttrQuery->Evaluate(f)) return f;
            delete f;
        }
    }
    RSCLIP_GUARD("reading a feature", nullptr)
}

int RSCLIPLayer::TestCapability(const char *pszCap) {
    return EQUAL(pszCap, OLCRandomRead) || EQUAL(pszCap, OLCFastSpatialFilter) ||
           EQUAL(pszCap, OLCFastGetExtent) || EQUAL(pszCap, OLCStringsAsUTF8);
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

/* The candidate ids: the R-tree's answer for the filter's envelope (all tiles without one). */
bool RSCLIPTilesLayer::LoadIds() {
    m_bIdsValid = true;
    m_anIds.clear();
    double bb[4] = {-DBL_MAX, -DBL_MAX, DBL_MAX, DBL_MAX};
    if (m_poFilterGeom) {
        bb[0] = m_sFilterEnvelope.MinX;
        bb[1] = m_sFilterEnvelope.MinY;
        bb[2] = m_sFilterEnvelope.MaxX;
        bb[3] = m_sFilterEnvelope.MaxY;
    }
    int64_t *ids = nullptr;
    size_t n = 0;
    if (rsclip_index_tiles_in_bbox(m_poDS->Index(), bb, 0, &ids, &n) != RSCLIP_OK) {
        RSCLIPReportError(m_poDS->m_osPath.c_str());
        return false;
    }
    m_anIds.assign(ids, ids + n);
    rsclip_free(ids);
    return true;
}

void RSCLIPTilesLayer::ResetReading() {
    m_iNext = 0;
}

/* The feature of one tile; *bNotFound set when the index has no such tile. */
static OGRFeature *TileFeature(RSCLIPDataset *poDS, OGRFeatureDefn *defn, GIntBig nFID,
                               GIntBig nSceneOnly, bool *pbNotFound) {
    *pbNotFound = false;
    rsclip_tile_info *t = nullptr;
    int rc = rsclip_index_get_tile(poDS->Index(), nFID, &t);
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
    f->SetField("lon", t->lon);
    f->SetField("lat", t->lat);
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
    while (m_iNext < static_cast<GIntBig>(m_anIds.size())) {
        bool bNotFound = false;
        OGRFeature *f = TileFeature(m_poDS, m_poDefn, m_anIds[static_cast<size_t>(m_iNext++)],
                                    m_poDS->m_nSceneId, &bNotFound);
        if (bNotFound) continue; /* another scene, or deleted meanwhile */
        if (!f) return nullptr;  /* error already reported */
        if (m_poFilterGeom && !FilterGeometry(f->GetGeometryRef())) {
            delete f;
            continue;
        }
        return f;
    }
    return nullptr;
}

OGRFeature *RSCLIPTilesLayer::GetFeature(GIntBig nFID) {
    try {
        bool bNotFound = false;
        return TileFeature(m_poDS, m_poDefn, nFID, m_poDS->m_nSceneId, &bNotFound);
    }
    RSCLIP_GUARD("GetFeature", nullptr)
}

GIntBig RSCLIPTilesLayer::GetFeatureCount(int bForce) {
    try {
        if (!m_poFilterGeom && !m_poAttrQuery && m_poDS->m_nSceneId <= 0)
            return m_poDS->m_sInfo.n_tiles;
        return OGRLayer::GetFeatureCount(bForce);
    }
    RSCLIP_GUARD("GetFeatureCount", -1)
}

OGRErr RSCLIPTilesLayer::GetExtent(OGREnvelope *psExtent, int bForce) {
    try {
        if (m_poDS->m_nSceneId <= 0) {
            if (!m_poDS->m_sInfo.has_extent) return OGRERR_FAILURE;
            psExtent->MinX = m_poDS->m_sInfo.extent[0];
            psExtent->MinY = m_poDS->m_sInfo.extent[1];
            psExtent->MaxX = m_poDS->m_sInfo.extent[2];
            psExtent->MaxY = m_poDS->m_sInfo.extent[3];
            return OGRERR_NONE;
        }
        return OGRLayer::GetExtent(psExtent, bForce);
    }
    RSCLIP_GUARD("GetExtent", OGRERR_FAILURE)
}

void RSCLIPTilesLayer::SetSpatialFilter(OGRGeometry *poGeom) {
    try {
        OGRLayer::SetSpatialFilter(poGeom);
        m_bIdsValid = false;
        m_iNext = 0;
    } catch (const std::exception &e) {
        RSCLIPReportException("SetSpatialFilter", &e);
    } catch (...) {
        RSCLIPReportException("SetSpatialFilter", nullptr);
    }
}

int RSCLIPTilesLayer::TestCapability(const char *pszCap) {
    if (EQUAL(pszCap, OLCFastFeatureCount))
        return !m_poFilterGeom && !m_poAttrQuery && m_poDS->m_nSceneId <= 0;
    if (EQUAL(pszCap, OLCFastGetExtent)) return m_poDS->m_nSceneId <= 0;
    return RSCLIPLayer::TestCapability(pszCap);
}

/* ---- hits and regions ------------------------------------------------------------------------ */

/* The same properties, in the same order, as rsclip_export_hits / rsclip_export_regions. */
static const FieldSpec kHitFields[] = {
    {"rank", OFTInteger},  {"score", OFTReal},    {"prob", OFTReal},         {"lon", OFTReal},
    {"lat", OFTReal},      {"scene", OFTString},  {"xoff", OFTInteger},      {"yoff", OFTInteger},
    {"xsize", OFTInteger}, {"ysize", OFTInteger}, {"tile_id", OFTInteger64},
};
static const FieldSpec kRegionFields[] = {
    {"region", OFTInteger}, {"tiles", OFTInteger},  {"max_prob", OFTReal},
    {"mean_prob", OFTReal}, {"max_score", OFTReal}, {"area_m2", OFTReal},
    {"lon", OFTReal},       {"lat", OFTReal},       {"best_tile", OFTInteger64},
};

RSCLIPHitsLayer::RSCLIPHitsLayer(RSCLIPDataset *poDS, bool bRegions)
    : RSCLIPLayer(poDS, bRegions ? "regions" : "hits", bRegions ? wkbMultiPolygon : wkbPolygon),
      m_bRegions(bRegions) {
    if (bRegions)
        AddFields(m_poDefn, kRegionFields, sizeof kRegionFields / sizeof *kRegionFields);
    else
        AddFields(m_poDefn, kHitFields, sizeof kHitFields / sizeof *kHitFields);
}

RSCLIPHitsLayer::~RSCLIPHitsLayer() {
    Clear();
}

void RSCLIPHitsLayer::Clear() {
    rsclip_results_free(m_psOwned);
    m_psOwned = nullptr;
    m_psRes = nullptr;
    rsclip_regions_free(m_pasRegions, m_nRegions);
    m_pasRegions = nullptr;
    m_nRegions = 0;
    m_bValid = false;
}

/* Bring the results in line with the spatial filter: the filter restricts the search (through
 * the R-tree and the footprints) before ranking, so the layer holds the best TOP_K tiles inside
 * the filter, ranked 1..n. Failures are reported once and leave the layer empty. */
bool RSCLIPHitsLayer::Run() {
    if (m_bValid) return true;
    if (m_bFailed) return false;
    Clear();
    if (!m_poFilterGeom) {
        m_psRes = m_poDS->m_psBase;
    } else {
        if (!m_poDS->Search(m_poFilterGeom, m_bFilterIsEnvelope != 0, &m_psOwned)) {
            m_bFailed = true;
            return false;
        }
        m_psRes = m_psOwned;
    }
    if (m_bRegions && m_psRes &&
        rsclip_regions_merge(m_psRes->hits, m_psRes->n, &m_pasRegions, &m_nRegions) != RSCLIP_OK) {
        RSCLIPReportError("merging hits into regions");
        m_bFailed = true;
        return false;
    }
    m_bValid = true;
    return true;
}

int RSCLIPHitsLayer::Count() const {
    if (m_bRegions) return m_nRegions;
    return m_psRes ? m_psRes->n : 0;
}

/* Feature i (0-based) of the current results. */
OGRFeature *RSCLIPHitsLayer::Make(int i) {
    auto *f = new OGRFeature(m_poDefn);
    OGRSpatialReference *srs = m_poDS->WGS84();
    if (m_bRegions) {
        const rsclip_region *r = &m_pasRegions[i];
        f->SetFID(r->id);
        f->SetField("region", r->id);
        f->SetField("tiles", r->n_tiles);
        f->SetField("max_prob", static_cast<double>(r->max_prob));
        f->SetField("mean_prob", static_cast<double>(r->mean_prob));
        f->SetField("max_score", static_cast<double>(r->max_score));
        f->SetField("area_m2", r->area_m2);
        f->SetField("lon", r->lon);
        f->SetField("lat", r->lat);
        f->SetField("best_tile", static_cast<GIntBig>(r->best_tile_id));
        OGRGeometry *g = nullptr;
        if (r->wkt && OGRGeometryFactory::createFromWkt(r->wkt, nullptr, &g) == OGRERR_NONE && g) {
            g = OGRGeometryFactory::forceToMultiPolygon(g);
            g->assignSpatialReference(srs);
            f->SetGeometryDirectly(g);
        }
    } else {
        const rsclip_hit *h = &m_psRes->hits[i];
        f->SetFID(h->rank);
        f->SetField("rank", h->rank);
        f->SetField("score", static_cast<double>(h->score));
        f->SetField("prob", static_cast<double>(h->prob));
        f->SetField("lon", h->lon);
        f->SetField("lat", h->lat);
        f->SetField("scene", h->scene ? h->scene : "");
        f->SetField("xoff", h->xoff);
        f->SetField("yoff", h->yoff);
        f->SetField("xsize", h->xsize);
        f->SetField("ysize", h->ysize);
        f->SetField("tile_id", static_cast<GIntBig>(h->tile_id));
        OGRPolygon *poly = RingToPolygon(h->footprint, static_cast<size_t>(h->n_footprint));
        if (poly) {
            poly->assignSpatialReference(srs);
            f->SetGeometryDirectly(poly);
        }
    }
    return f;
}

void RSCLIPHitsLayer::ResetReading() {
    m_iNext = 0;
}

OGRFeature *RSCLIPHitsLayer::GetNextRawFeature() {
    if (!Run()) return nullptr;
    if (m_iNext >= Count()) return nullptr;
    return Make(static_cast<int>(m_iNext++));
}

/* FID = rank (hits) or region number (regions) within the layer's current results. */
OGRFeature *RSCLIPHitsLayer::GetFeature(GIntBig nFID) {
    try {
        if (!Run() || nFID < 1 || nFID > Count()) return nullptr;
        return Make(static_cast<int>(nFID - 1));
    }
    RSCLIP_GUARD("GetFeature", nullptr)
}

GIntBig RSCLIPHitsLayer::GetFeatureCount(int bForce) {
    try {
        if (!Run()) return 0;
        if (!m_poAttrQuery) return Count();
        return OGRLayer::GetFeatureCount(bForce);
    }
    RSCLIP_GUARD("GetFeatureCount", -1)
}

OGRErr RSCLIPHitsLayer::GetExtent(OGREnvelope *psExtent, int) {
    try {
        if (!Run() || Count() == 0) return OGRERR_FAILURE;
        OGREnvelope env;
        for (int i = 0; i < Count(); i++) {
            std::unique_ptr<OGRFeature> f(Make(i));
            if (const OGRGeometry *g = f->GetGeometryRef()) {
                OGREnvelope e;
                g->getEnvelope(&e);
                env.Merge(e);
            }
        }
        if (!env.IsInit()) return OGRERR_FAILURE;
        *psExtent = env;
        return OGRERR_NONE;
    }
    RSCLIP_GUARD("GetExtent", OGRERR_FAILURE)
}

void RSCLIPHitsLayer::SetSpatialFilter(OGRGeometry *poGeom) {
    try {
        OGRLayer::SetSpatialFilter(poGeom);
        m_bValid = false;
        m_bFailed = false;
        m_iNext = 0;
    } catch (const std::exception &e) {
        RSCLIPReportException("SetSpatialFilter", &e);
    } catch (...) {
        RSCLIPReportException("SetSpatialFilter", nullptr);
    }
}

int RSCLIPHitsLayer::TestCapability(const char *pszCap) {
    if (EQUAL(pszCap, OLCFastFeatureCount)) return m_poAttrQuery == nullptr;
    return RSCLIPLayer::TestCapability(pszCap);
}
