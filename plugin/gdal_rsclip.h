/*
 * gdal_rsclip.h -- the RSCLIP GDAL driver: a thin C++ shim over rsclip's public C API.
 *
 * "RSCLIP:/path/index.gpkg" opens an rsclip index as
 *   - vector layers: `tiles` (every indexed footprint), `hits` (the ranked hits of the QUERY or
 *     LIKE_TILE open option) and `regions` (hits merged into regions, MERGE=YES);
 *   - raster subdatasets "RSCLIP:/path/index.gpkg:SCENE_ID" (with QUERY or LIKE_TILE): the score
 *     heatmap of one scene, one Float32 pixel per tile step.
 * Everything that knows about models, SQL or tiling lives in rsclip_core (rsclip/query.h,
 * rsclip/index.h, rsclip/export.h); this file only maps it onto GDAL's objects. Every rsclip
 * failure becomes one CPLError; no C++ exception leaves a GDAL entry point.
 */
#ifndef GDAL_RSCLIP_H
#define GDAL_RSCLIP_H

#include "gdal_priv.h"
#include "ogrsf_frmts.h"

#include "rsclip/rsclip.h"
#include "rsclip/query.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#define RSCLIP_PREFIX "RSCLIP:"

/* Report the calling thread's last rsclip error as one CPLError (context names what we did). */
void RSCLIPReportError(const char *context);
/* Report a caught C++ exception at a GDAL entry point. */
void RSCLIPReportException(const char *where, const std::exception *e);

/* Parsed open options (validated by RSCLIPQueryOptions::Parse). */
struct RSCLIPQueryOptions {
    std::string osQuery;
    std::vector<std::string> aosNegatives;
    std::string osTemplate;
    std::string osModel;
    int nTopK = 100;
    double dfMinProb = 0.0;
    bool bMerge = false;
    GIntBig nLikeTile = 0;
    double dfStep = 0; /* heatmap step override in pixels (0 = from the tiles) */

    bool HasQuery() const {
        return !osQuery.empty() || nLikeTile > 0;
    }
    /* Fill an rsclip_query (strings point into this object and negs). */
    rsclip_query ToQuery(std::vector<const char *> &negs) const;
    /* false with one CPLError on a bad value. */
    bool Parse(CSLConstList papszOpenOptions);
};

class RSCLIPDataset;

/* Base of the three layers: read-only, with one clear error for every write. */
class RSCLIPLayer : public OGRLayer {
  protected:
    RSCLIPDataset *m_poDS;
    OGRFeatureDefn *m_poDefn;
    GIntBig m_iNext = 0;

    explicit RSCLIPLayer(RSCLIPDataset *poDS, const char *pszName, OGRwkbGeometryType eType);
    OGRErr ReadOnly(const char *what);
    /* The next feature without the attribute filter (spatial filtering is the layer's job). */
    virtual OGRFeature *GetNextRawFeature() = 0;

  public:
    ~RSCLIPLayer() override;
    OGRFeatureDefn *GetLayerDefn() override {
        return m_poDefn;
    }
    OGRFeature *GetNextFeature() override;
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

/* Every tile footprint of the index (FID = tile id). */
class RSCLIPTilesLayer final : public RSCLIPLayer {
    std::vector<int64_t> m_anIds;
    bool m_bIdsValid = false;
    bool LoadIds();

  protected:
    OGRFeature *GetNextRawFeature() override;

  public:
    explicit RSCLIPTilesLayer(RSCLIPDataset *poDS);
    void ResetReading() override;
    OGRFeature *GetFeature(GIntBig nFID) override;
    GIntBig GetFeatureCount(int bForce) override;
    OGRErr GetExtent(OGREnvelope *psExtent, int bForce) override;
    OGRErr GetExtent(int iGeomField, OGREnvelope *psExtent, int bForce) override {
        return iGeomField == 0 ? GetExtent(psExtent, bForce)
                               : OGRLayer::GetExtent(iGeomField, psExtent, bForce);
    }
    void SetSpatialFilter(OGRGeometry *poGeom) override;
    void SetSpatialFilter(int iGeomField, OGRGeometry *poGeom) override {
        OGRLayer::SetSpatialFilter(iGeomField, poGeom);
    }
    int TestCapability(const char *pszCap) override;
};

/* The ranked hits of the query (FID = rank) or, with bRegions, the merged regions (FID = region
 * number). The spatial filter restricts the search itself (before ranking). */
class RSCLIPHitsLayer final : public RSCLIPLayer {
    bool m_bRegions;
    rsclip_results *m_psOwned = nullptr;     /* results of a filtered search */
    const rsclip_results *m_psRes = nullptr; /* m_psOwned or the dataset's unfiltered ones */
    rsclip_region *m_pasRegions = nullptr;
    int m_nRegions = 0;
    bool m_bValid = false; /* results match the current spatial filter */
    bool m_bFailed = false;
    bool Run();
    void Clear();
    OGRFeature *Make(int i);
    int Count() const;

  protected:
    OGRFeature *GetNextRawFeature() override;

  public:
    RSCLIPHitsLayer(RSCLIPDataset *poDS, bool bRegions);
    ~RSCLIPHitsLayer() override;
    void ResetReading() override;
    OGRFeature *GetFeature(GIntBig nFID) override;
    GIntBig GetFeatureCount(int bForce) override;
    OGRErr GetExtent(OGREnvelope *psExtent, int bForce) override;
    OGRErr GetExtent(int iGeomField, OGREnvelope *psExtent, int bForce) override {
        return iGeomField == 0 ? GetExtent(psExtent, bForce)
                               : OGRLayer::GetExtent(iGeomField, psExtent, bForce);
    }
    void SetSpatialFilter(OGRGeometry *poGeom) override;
    void SetSpatialFilter(int iGeomField, OGRGeometry *poGeom) override {
        OGRLayer::SetSpatialFilter(iGeomField, poGeom);
    }
    int TestCapability(const char *pszCap) override;
};

class RSCLIPDataset final : public GDALDataset {
    friend class RSCLIPTilesLayer;
    friend class RSCLIPHitsLayer;
    friend class RSCLIPHeatmapBand;

    std::string m_osPath;
    RSCLIPQueryOptions m_oOpts;
    rsclip_session *m_psSession = nullptr;
    rsclip_index *m_psIndex = nullptr; /* owned only when there is no session */
    rsclip_index_info m_sInfo;
    rsclip_results *m_psBase = nullptr; /* the query's hits without spatial filter */
    GIntBig m_nSceneId = 0;             /* > 0: this dataset is one scene (subdataset) */
    std::vector<std::unique_ptr<OGRLayer>> m_apoLayers;
    std::map<int64_t, std::string> m_oScenePaths;
    OGRSpatialReference *m_poWGS84 = nullptr;
    OGRSpatialReference m_oSceneSRS;
    double m_adfGeoTransform[6] = {0, 1, 0, 0, 0, 1};

    bool OpenIndex();
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

    const char *ScenePath(int64_t nSceneId);
    /* Run the query (restricted to the filter geometry, in WGS84, when not null). */
    bool Search(const OGRGeometry *poFilter, bool bFilterIsEnvelope, rsclip_results **out);
    OGRSpatialReference *WGS84() const {
        return m_poWGS84;
    }
    rsclip_index *Index() {
        return m_psIndex;
    }
};

/* One scene's heatmap: probabilities of the query per tile, nodata (NaN) where no tile is. */
class RSCLIPHeatmapBand final : public GDALRasterBand {
    std::vector<float> m_afValues; /* [nRasterYSize][nRasterXSize] */

  public:
    RSCLIPHeatmapBand(RSCLIPDataset *poDS, int nXSize, int nYSize, std::vector<float> &&values);
    CPLErr IReadBlock(int nBlockXOff, int nBlockYOff, void *pData) override;
    double GetNoDataValue(int *pbSuccess) override;
};

#endif
