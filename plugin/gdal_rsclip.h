/*
 * gdal_rsclip.h -- the RSCLIP GDAL driver: a thin C++ shim over rsclip's public C API.
 *
 * "RSCLIP:/path/index.gpkg" opens an rsclip index -- one file, or the folder of parts of a sharded
 * index ("RSCLIP:/path/city/", or the folder's bare path: rsclip_index_set_open) -- as
 *   - vector layers: `tiles` (every indexed footprint), `hits` (the ranked hits of the QUERY or
 *     LIKE_TILE open option; AFTER, BEFORE and LATEST filter them by time), or `changes` in its
 *     place (CHANGE=FROM/TO: places seen in both periods, rsclip_session_change), and `regions`
 *     (hits, or the later tiles of the changes, merged into regions, MERGE=YES);
 *   - raster subdatasets "RSCLIP:/path/index.gpkg:SCENE_ID" (with QUERY or LIKE_TILE): the score
 *     heatmap of one scene (rsclip_session_heatmap), one Float32 pixel per tile step.
 * A folder reads as the file `rsclip merge` makes of it: tile ids are unique over the parts and
 * scene ids agree across them, so FIDs, scene ids and subdataset names are the merged file's.
 * Everything that knows about models, SQL or tiling lives in rsclip_core (rsclip/query.h,
 * rsclip/index.h, rsclip/export.h); these files only map it onto GDAL's objects. Every rsclip
 * failure becomes one CPLError; no C++ exception leaves a GDAL entry point.
 */
#ifndef GDAL_RSCLIP_H
#define GDAL_RSCLIP_H

#include "cpl_string.h"
#include "gdal_priv.h"
#include "ogrsf_frmts.h"

#include "rsclip/rsclip.h"
#include "rsclip/query.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#define RSCLIP_PREFIX "RSCLIP:"

/* Report the calling thread's last rsclip error as one CPLError (context names what we did). */
void RSCLIPReportError(const char *context);
/* Report a caught C++ exception at a GDAL entry point. */
void RSCLIPReportException(const char *where, const std::exception *e);

/* Parsed open options (RSCLIPQueryOptions::Parse converts the values and has the library check
 * the query: rsclip_query_check, rsclip_change_check). */
struct RSCLIPQueryOptions {
    std::string osQuery;
    bool bQuery = false; /* QUERY given (even empty) */
    std::vector<std::string> aosNegatives;
    std::string osTemplate;
    bool bTemplate = false; /* TEMPLATE given (even empty: the library refuses it) */
    std::string osModel;
    int nTopK = 100;
    double dfMinProb = 0.0;
    bool bMerge = false;
    GIntBig nLikeTile = 0;
    bool bHasBBox = false;
    double adfBBox[4] = {0, 0, 0, 0}; /* BBOX: west, south, east, north (WGS84) */
    std::string osAOI;                /* AOI: a vector file; osAOIWkt: its polygons */
    std::string osAOIWkt;
    int nStep = 0;                        /* heatmap step in pixels (0 = the scene's stride) */
    GIntBig nMaxCells = 0;                /* heatmap cell cap (0 = the library's default) */
    std::string osAfter, osBefore;        /* AFTER, BEFORE: rsclip/time.h text */
    bool bAfter = false, bBefore = false; /* given (even empty) */
    bool bLatest = false;
    bool bChange = false; /* CHANGE=FROM/TO: the two periods */
    rsclip_time sFrom = {0, 0}, sTo = {0, 0};

    bool HasQuery() const {
        return bQuery || nLikeTile > 0;
    }
    /* Fill an rsclip_query (strings point into this object and negs). */
    rsclip_query ToQuery(std::vector<const char *> &negs) const;
    /* false with one CPLError on a bad value. */
    bool Parse(CSLConstList papszOpenOptions);
};

class RSCLIPDataset;

/* Tiles of the index set, ids ascending, each with the part that holds it (anParts is empty when
 * the set has one part: every tile is in part 0). */
struct RSCLIPTileList {
    std::vector<int64_t> anIds;
    std::vector<int> anParts;

    size_t size() const {
        return anIds.size();
    }
    int Part(size_t i) const {
        return anParts.empty() ? 0 : anParts[i];
    }
    void clear() {
        anIds.clear();
        anParts.clear();
    }
    /* Add n ids of part iPart (bMulti: the set has several parts). */
    void Append(const int64_t *ids, size_t n, int iPart, bool bMulti);
    /* Order by id once every part is in; an id in two parts (parts that do not belong together)
     * is kept once, from the first part. */
    void Sort();
    /* Keep only the ids also in other (both sorted). */
    void Intersect(const RSCLIPTileList &other);
};

/* Base of the layers, written once for all of them: the OGRLayer contract over a list of
 * candidate features that the subclass produces in a fixed order (GetNextRawFeature at index
 * m_iNext). Here: both filters on every feature, counts, SetNextByIndex, the extent (of the
 * whole layer, filters aside, as GPKG and Shapefile report it), the spatial filter and a clear
 * error for every write. GetFeature(fid) is the subclass's and ignores both filters. */
class RSCLIPLayer : public OGRLayer {
  protected:
    RSCLIPDataset *m_poDS;
    OGRFeatureDefn *m_poDefn;
    GIntBig m_iNext = 0; /* index of the next candidate */
    OGREnvelope m_sExtent;
    bool m_bExtentDone = false, m_bHasExtent = false;

    RSCLIPLayer(RSCLIPDataset *poDS, const char *pszName, OGRwkbGeometryType eType);
    OGRErr ReadOnly(const char *what);
    bool Filtered() const {
        return m_poFilterGeom != nullptr || m_poAttrQuery != nullptr;
    }
    /* The candidate at m_iNext (then m_iNext moves on), no filter applied; nullptr at the end or
     * on an error (reported). */
    virtual OGRFeature *GetNextRawFeature() = 0;
    /* Features without filters; -1 on an error (reported). */
    virtual GIntBig RawCount() = 0;
    /* Envelope of every feature; false when there are none (or on an error). */
    virtual bool ComputeExtent(OGREnvelope *psExtent) = 0;
    /* The spatial filter changed (candidates may depend on it). */
    virtual void FilterChanged() {}

  public:
    ~RSCLIPLayer() override;
    OGRFeatureDefn *GetLayerDefn() override {
        return m_poDefn;
    }
    void ResetReading() override {
        m_iNext = 0;
    }
    OGRFeature *GetNextFeature() override;
    OGRErr SetNextByIndex(GIntBig nIndex) override;
    GIntBig GetFeatureCount(int bForce) override;
    OGRErr GetExtent(OGREnvelope *psExtent, int bForce) override;
    OGRErr GetExtent(int iGeomField, OGREnvelope *psExtent, int bForce) override {
        return OGRLayer::GetExtent(iGeomField, psExtent, bForce);
    }
    void SetSpatialFilter(OGRGeometry *poGeom) override;
    void SetSpatialFilter(int iGeomField, OGRGeometry *poGeom) override {
        OGRLayer::SetSpatialFilter(iGeomField, poGeom);
    }
    int TestCapability(const char *pszCap) override;

    OGRErr ISetFeature(OGRFeature *) override;
    OGRErr ICreateFeature(OGRFeature *) override;
    OGRErr IUpsertFeature(OGRFeature *) override;
    OGRErr DeleteFeature(GIntBig) override;
    OGRErr CreateField(OGRFieldDefn *, int) override;
    OGRErr DeleteField(int) override;
    OGRErr ReorderFields(int *) override;
    OGRErr AlterFieldDefn(int, OGRFieldDefn *, int) override;
    OGRErr CreateGeomField(OGRGeomFieldDefn *, int) override;
};

/* Every tile footprint of the index (every part of a folder), or of one scene (FID = tile id).
 * Candidates: the R-tree's answer (of each part) for the spatial filter's envelope. */
class RSCLIPTilesLayer final : public RSCLIPLayer {
    RSCLIPTileList m_oIds;
    bool m_bIdsValid = false;
    bool LoadIds();

  protected:
    OGRFeature *GetNextRawFeature() override;
    GIntBig RawCount() override;
    bool ComputeExtent(OGREnvelope *psExtent) override;
    void FilterChanged() override {
        m_bIdsValid = false;
    }

  public:
    explicit RSCLIPTilesLayer(RSCLIPDataset *poDS);
    OGRFeature *GetFeature(GIntBig nFID) override;
    int TestCapability(const char *pszCap) override;
};

/* The ranked hits of the query (FID = rank), the changes of a change query (FID = rank) or the
 * merged regions (FID = region number): the dataset's results, fixed at open, with the
 * properties rsclip_export_hits / _changes / _regions write. Filters select among them, as on
 * any layer; the BBOX, AOI and time open options restrict the search itself. */
class RSCLIPHitsLayer final : public RSCLIPLayer {
  public:
    enum class Kind { Hits, Changes, Regions };

  private:
    Kind m_eKind;
    int Count() const;
    OGRFeature *Make(int i);

  protected:
    OGRFeature *GetNextRawFeature() override;
    GIntBig RawCount() override {
        return Count();
    }
    bool ComputeExtent(OGREnvelope *psExtent) override;

  public:
    RSCLIPHitsLayer(RSCLIPDataset *poDS, Kind eKind);
    OGRFeature *GetFeature(GIntBig nFID) override;
};

class RSCLIPDataset final : public GDALDataset {
    friend class RSCLIPTilesLayer;
    friend class RSCLIPHitsLayer;
    friend class RSCLIPHeatmapBand;

    std::string m_osPath;
    CPLStringList m_aosOptions; /* the open options, from the name and beside it */
    RSCLIPQueryOptions m_oOpts;
    rsclip_session *m_psSession = nullptr;
    rsclip_index_set *m_psSet = nullptr; /* the session's, or owned when there is no session */
    int m_iLastPart = 0;                 /* the part that held the last tile looked up */
    rsclip_index_info m_sInfo;           /* over all parts (rsclip_index_set_info) */
    GIntBig m_nScenes = 0;               /* scenes, one per path (a scene over parts once) */
    std::vector<int64_t> m_anScenes;     /* ListScenes' answer, once listed */
    bool m_bScenesListed = false;
    rsclip_results *m_psHits = nullptr;    /* the query's hits (no CHANGE) */
    rsclip_changes *m_psChanges = nullptr; /* the change query's changes (CHANGE) */
    rsclip_region *m_pasRegions = nullptr;
    int m_nRegions = 0;
    rsclip_heatmap *m_psHeat = nullptr; /* the scene's heatmap (raster subdataset) */
    GIntBig m_nSceneId = 0;             /* > 0: this dataset is one scene (subdataset) */
    std::vector<std::unique_ptr<OGRLayer>> m_apoLayers;
    std::map<int64_t, std::string> m_oScenePaths;
    OGRSpatialReference *m_poWGS84 = nullptr;
    OGRSpatialReference m_oSceneSRS;

    std::string Name(GIntBig nSceneId) const;
    bool OpenIndex();
    bool OpenSet();
    bool RunQuery();
    bool BuildHeatmap();
    void ListSubdatasets();

  public:
    RSCLIPDataset();
    ~RSCLIPDataset() override;

    static int Identify(GDALOpenInfo *poOpenInfo);
    static GDALDataset *Open(GDALOpenInfo *poOpenInfo);

    int GetLayerCount() override {
        return static_cast<int>(m_apoLayers.size());
    }
    OGRLayer *GetLayer(int i) override;
    int TestCapability(const char *) override {
        return FALSE;
    }
    CPLErr GetGeoTransform(double *padf) override;
    const OGRSpatialReference *GetSpatialRef() const override;

    /* The scene's path as UTF-8 (the layers declare OLCStringsAsUTF8). */
    const char *ScenePath(int64_t nSceneId);
    OGRSpatialReference *WGS84() const {
        return m_poWGS84;
    }

    /* ---- the index set: one file, or the parts of a folder (rsclip_set.cpp) ---- */
    int PartCount() const {
        return rsclip_index_set_count(m_psSet);
    }
    /* One scene, from the first part that holds it: an rsclip status; NOT_FOUND (no part holds
     * it) leaves no error behind. *out: rsclip_free. */
    int GetScene(int64_t nSceneId, rsclip_scene_info **out);
    /* One tile, from part iPart (>= 0, from a tile list), or (-1) from the part that holds it.
     * An rsclip status; NOT_FOUND leaves no error behind. *out: rsclip_free. */
    int GetTile(int64_t nId, int iPart, rsclip_tile_info **out);
    /* Tiles over every part, ids ascending; false with one error reported. */
    bool SceneTiles(int64_t nSceneId, RSCLIPTileList &out);
    bool TilesInBBox(const double adfBBox[4], RSCLIPTileList &out);
    bool AllTiles(RSCLIPTileList &out);
    /* What the first two share: fetch(part, &ids, &n) gives a part's ids (rsclip_free); they
     * are gathered with their part and sorted. */
    bool CollectTiles(RSCLIPTileList &out,
                      const std::function<int(rsclip_index *, int64_t **, size_t *)> &fetch);
    /* The scenes, one per path (a scene spread over parts once), ids ascending; their paths go
     * into the ScenePath cache. false with one error reported. */
    bool ListScenes(std::vector<int64_t> &anIds);
};

/* One scene's heatmap (the dataset's rsclip_heatmap): probabilities of the query per cell,
 * nodata (NaN) where no tile is. */
class RSCLIPHeatmapBand final : public GDALRasterBand {
  public:
    explicit RSCLIPHeatmapBand(RSCLIPDataset *poDS);
    CPLErr IReadBlock(int nBlockXOff, int nBlockYOff, void *pData) override;
    double GetNoDataValue(int *pbSuccess) override;
};

#endif
