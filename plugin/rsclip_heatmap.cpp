/*
 * rsclip_heatmap.cpp -- one scene's query heatmap as a one-band Float32 raster: the grid and its
 * values are rsclip_session_heatmap's (rsclip/query.h); this file only makes them a GDAL band.
 */
#include "gdal_rsclip.h"

#include <cstring>
#include <limits>

bool RSCLIPDataset::BuildHeatmap() {
    std::vector<const char *> negs;
    rsclip_query q = m_oOpts.ToQuery(negs);
    rsclip_heatmap_params hp = rsclip_heatmap_default_params();
    hp.step = m_oOpts.nStep;
    hp.max_cells = m_oOpts.nMaxCells;
    if (rsclip_session_heatmap(m_psSession, &q, m_nSceneId, &hp, &m_psHeat) != RSCLIP_OK) {
        const bool bTooBig = rsclip_last_status() == RSCLIP_ERR_UNSUPPORTED;
        RSCLIPReportError(CPLSPrintf("heatmap of scene " CPL_FRMT_GIB "%s", m_nSceneId,
                                     bTooBig ? " (open options STEP, MAX_CELLS)" : ""));
        return false;
    }
    const rsclip_heatmap *h = m_psHeat;
    if (*h->crs_wkt && m_oSceneSRS.importFromWkt(h->crs_wkt) != OGRERR_NONE) m_oSceneSRS.Clear();
    nRasterXSize = h->width;
    nRasterYSize = h->height;
    SetBand(1, new RSCLIPHeatmapBand(this));
    GDALDataset::SetMetadataItem("SCENE", h->scene);
    GDALDataset::SetMetadataItem("SCENE_ID", CPLSPrintf(CPL_FRMT_GIB, m_nSceneId));
    GDALDataset::SetMetadataItem("STEP", CPLSPrintf("%d", h->step));
    GDALDataset::SetMetadataItem("STEP_FROM", h->step_from);
    GDALDataset::SetMetadataItem("TILE_SIZE", CPLSPrintf("%d", h->tile_size));
    GDALDataset::SetMetadataItem("CELL_SIZE", CPLSPrintf("%.17g %.17g", h->cell[0], h->cell[1]));
    GDALDataset::SetMetadataItem("GRID_ORIGIN",
                                 CPLSPrintf("%.17g %.17g", h->origin[0], h->origin[1]));
    GDALDataset::SetMetadataItem("SCENE_TILES", CPLSPrintf(CPL_FRMT_GIB, h->n_tiles));
    return true;
}

RSCLIPHeatmapBand::RSCLIPHeatmapBand(RSCLIPDataset *poDSIn) {
    poDS = poDSIn;
    nBand = 1;
    eDataType = GDT_Float32;
    nRasterXSize = poDSIn->GetRasterXSize();
    nRasterYSize = poDSIn->GetRasterYSize();
    nBlockXSize = nRasterXSize;
    nBlockYSize = 1;
    const std::string &q = poDSIn->m_oOpts.osQuery;
    SetDescription(
        q.empty() ? CPLSPrintf("probability: like tile " CPL_FRMT_GIB, poDSIn->m_oOpts.nLikeTile)
                  : CPLSPrintf("probability: %s", q.c_str()));
}

CPLErr RSCLIPHeatmapBand::IReadBlock(int, int nBlockYOff, void *pData) {
    const rsclip_heatmap *h = static_cast<RSCLIPDataset *>(poDS)->m_psHeat;
    memcpy(pData, h->values + static_cast<size_t>(nBlockYOff) * static_cast<size_t>(h->width),
           sizeof(float) * static_cast<size_t>(h->width));
    return CE_None;
}

double RSCLIPHeatmapBand::GetNoDataValue(int *pbSuccess) {
    if (pbSuccess) *pbSuccess = TRUE;
    return std::numeric_limits<double>::quiet_NaN();
}
