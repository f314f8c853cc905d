/*
 * rsclip_heatmap.cpp -- one scene's query heatmap as a one-band Float32 raster.
 *
 * Grid: one cell per tiling step S (the stride, in scene pixels). Cell (i, j) holds the tile of
 * tiler column i and row j, so its geotransform is the scene's scaled by S: the top-left corner
 * of cell (i, j) is scene pixel (i * S, j * S), the top-left corner of that tile's window.
 * The tiler shifts the last column (row) back so that its tile ends exactly at the raster edge;
 * such a tile starts at xoff = W - T (T = tile size), before (tiles_x - 1) * S. A tile's column
 * is therefore ceil(xoff / S) (exact for every tile the tiler makes, edge tiles included: for the
 * last column ceil((W - T) / S) = tiles_x - 1 by the tiler's own count), and the grid has
 * ceil((W - T) / S) + 1 columns (1 when W <= T). The last cell thus reaches up to S - 1 pixels
 * beyond the raster edge while its tile ends at the edge: the price of a regular grid. A scene
 * with a single column (row) has cells as wide (tall) as its tiles: exactly the tile.
 * S: the STEP open option, else the index meta key "tile_stride" when present, else the greatest
 * common divisor of the interior tile offsets (the offsets of tiles that neither start at 0 nor
 * end at the raster edge, all multiples of S), else (one or two columns and rows) the tile size.
 * Values: the query's SigLIP probability per tile (rsclip_session_scene_probs: negatives, TOP_K
 * and MIN_PROB do not apply); NaN (the nodata value) where no tile was indexed.
 */
#include "gdal_rsclip.h"

#include <cmath>
#include <cstring>
#include <limits>

static GIntBig Gcd(GIntBig a, GIntBig b) {
    while (b) {
        GIntBig t = a % b;
        a = b;
        b = t;
    }
    return a;
}

bool RSCLIPDataset::BuildHeatmap() {
    rsclip_scene_info *si = nullptr;
    if (rsclip_index_get_scene(m_psIndex, m_nSceneId, &si) != RSCLIP_OK) {
        RSCLIPReportError(m_osPath.c_str());
        return false;
    }
    const int W = si->width, H = si->height;
    memcpy(m_adfGeoTransform, si->geotransform, sizeof m_adfGeoTransform);
    std::string osCRS = si->crs_wkt ? si->crs_wkt : "";
    std::string osScene = si->path;
    rsclip_free(si);

    std::vector<const char *> negs;
    rsclip_query q = m_oOpts.ToQuery(negs);
    int64_t *ids = nullptr;
    float *probs = nullptr;
    size_t n = 0;
    if (rsclip_session_scene_probs(m_psSession, &q, m_nSceneId, &ids, &probs, &n) != RSCLIP_OK) {
        RSCLIPReportError(m_osPath.c_str());
        return false;
    }
    std::vector<rsclip_tile_window> win(n);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        rsclip_tile_info *t = nullptr;
        if (rsclip_index_get_tile(m_psIndex, ids[i], &t) != RSCLIP_OK) {
            RSCLIPReportError(m_osPath.c_str());
            ok = false;
        } else {
            win[i] = t->window;
        }
        rsclip_free(t);
    }
    rsclip_free(ids);
    std::vector<float> vals(probs, probs + n);
    rsclip_free(probs);
    if (!ok) return false;

    int T_x = 1, T_y = 1;
    GIntBig g = 0;
    for (const auto &w : win) {
        T_x = std::max(T_x, w.xsize);
        T_y = std::max(T_y, w.ysize);
        if (w.xoff > 0 && w.xoff + w.xsize < W) g = Gcd(g, w.xoff);
        if (w.yoff > 0 && w.yoff + w.ysize < H) g = Gcd(g, w.yoff);
    }
    GIntBig S = static_cast<GIntBig>(m_oOpts.dfStep);
    const char *how = "STEP open option";
    char *meta = nullptr;
    if (S <= 0 && rsclip_index_get_meta(m_psIndex, "tile_stride", &meta) == RSCLIP_OK && meta) {
        S = CPLAtoGIntBig(meta);
        how = "index meta tile_stride";
    }
    rsclip_free(meta);
    rsclip_clear_error();
    if (S <= 0 && g > 0) {
        S = g;
        how = "tile offsets";
    }
    if (S <= 0) {
        S = std::max(T_x, T_y);
        how = "tile size";
    }
    auto cells = [S](int extent, int tile) -> GIntBig {
        return extent <= tile ? 1 : (extent - tile + S - 1) / S + 1;
    };
    GIntBig nx = cells(W, T_x), ny = cells(H, T_y);
    for (const auto &w : win) {
        nx = std::max<GIntBig>(nx, (w.xoff + S - 1) / S + 1);
        ny = std::max<GIntBig>(ny, (w.yoff + S - 1) / S + 1);
    }
    if (nx > INT_MAX / 2 || ny > INT_MAX / 2 || nx * ny > (GIntBig(1) << 31)) {
        CPLError(CE_Failure, CPLE_AppDefined,
                 "RSCLIP: %s: heatmap of scene " CPL_FRMT_GIB " would be " CPL_FRMT_GIB
                 " x " CPL_FRMT_GIB " cells (step " CPL_FRMT_GIB "): too large",
                 m_osPath.c_str(), m_nSceneId, nx, ny, S);
        return false;
    }
    std::vector<float> grid(static_cast<size_t>(nx * ny), std::numeric_limits<float>::quiet_NaN());
    for (size_t i = 0; i < win.size(); i++) {
        const GIntBig cx = (win[i].xoff + S - 1) / S, cy = (win[i].yoff + S - 1) / S;
        grid[static_cast<size_t>(cy * nx + cx)] = vals[i];
    }

    /* A scene no wider (taller) than a tile has one column (row) whose tile is the whole width
     * (height): that cell is exactly the tile. */
    const double Sx = static_cast<double>(nx == 1 ? T_x : S);
    const double Sy = static_cast<double>(ny == 1 ? T_y : S);
    m_adfGeoTransform[1] *= Sx;
    m_adfGeoTransform[4] *= Sx;
    m_adfGeoTransform[2] *= Sy;
    m_adfGeoTransform[5] *= Sy;
    if (!osCRS.empty() && m_oSceneSRS.importFromWkt(osCRS.c_str()) != OGRERR_NONE)
        m_oSceneSRS.Clear();
    nRasterXSize = static_cast<int>(nx);
    nRasterYSize = static_cast<int>(ny);
    SetBand(1, new RSCLIPHeatmapBand(this, nRasterXSize, nRasterYSize, std::move(grid)));
    GDALDataset::SetMetadataItem("SCENE", osScene.c_str());
    GDALDataset::SetMetadataItem("SCENE_ID", CPLSPrintf(CPL_FRMT_GIB, m_nSceneId));
    GDALDataset::SetMetadataItem("STEP", CPLSPrintf(CPL_FRMT_GIB, S));
    GDALDataset::SetMetadataItem("CELL_SIZE", CPLSPrintf("%.0f %.0f", Sx, Sy));
    GDALDataset::SetMetadataItem("STEP_FROM", how);
    GDALDataset::SetMetadataItem("SCENE_TILES", CPLSPrintf("%zu", win.size()));
    return true;
}

RSCLIPHeatmapBand::RSCLIPHeatmapBand(RSCLIPDataset *poDSIn, int nXSize, int nYSize,
                                     std::vector<float> &&values)
    : m_afValues(std::move(values)) {
    poDS = poDSIn;
    nBand = 1;
    eDataType = GDT_Float32;
    nRasterXSize = nXSize;
    nRasterYSize = nYSize;
    nBlockXSize = nXSize;
    nBlockYSize = 1;
    const std::string &q = poDSIn->m_oOpts.osQuery;
    SetDescription(
        q.empty() ? CPLSPrintf("probability: like tile " CPL_FRMT_GIB, poDSIn->m_oOpts.nLikeTile)
                  : CPLSPrintf("probability: %s", q.c_str()));
}

CPLErr RSCLIPHeatmapBand::IReadBlock(int, int nBlockYOff, void *pData) {
    memcpy(pData, m_afValues.data() + static_cast<size_t>(nBlockYOff) * nRasterXSize,
           sizeof(float) * static_cast<size_t>(nRasterXSize));
    return CE_None;
}

double RSCLIPHeatmapBand::GetNoDataValue(int *pbSuccess) {
    if (pbSuccess) *pbSuccess = TRUE;
    return std::numeric_limits<double>::quiet_NaN();
}
