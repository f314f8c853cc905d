/*
 * rsclip_set.cpp -- the dataset's index set: one index file, or the parts of a sharded folder
 * (rsclip_index_set_*, rsclip/index.h). Tile ids are unique over the parts and scene ids agree
 * across them, so a folder reads as one index: lists are gathered from every part and put in id
 * order, and a tile or scene is looked up in the part that holds it.
 */
#include "gdal_rsclip.h"

#include <algorithm>
#include <numeric>

/* ---- tile lists ------------------------------------------------------------------------------ */

void RSCLIPTileList::Append(const int64_t *ids, size_t n, int iPart, bool bMulti) {
    if (n == 0) return;
    anIds.insert(anIds.end(), ids, ids + n);
    if (bMulti) anParts.insert(anParts.end(), n, iPart);
}

void RSCLIPTileList::Sort() {
    if (std::is_sorted(anIds.begin(), anIds.end()) &&
        std::adjacent_find(anIds.begin(), anIds.end()) == anIds.end())
        return; /* the usual case: each part's ids ascending, parts in id order */
    std::vector<size_t> order(anIds.size());
    std::iota(order.begin(), order.end(), size_t{0});
    /* stable: of an id in two parts, the one from the first part comes first and is kept */
    std::stable_sort(order.begin(), order.end(),
                     [this](size_t a, size_t b) { return anIds[a] < anIds[b]; });
    std::vector<int64_t> ids;
    std::vector<int> parts;
    ids.reserve(anIds.size());
    parts.reserve(anParts.size());
    for (size_t i : order) {
        if (!ids.empty() && ids.back() == anIds[i]) {
            CPLDebug("RSCLIP", "tile " CPL_FRMT_GIB " is in two parts: the first one is read",
                     static_cast<GIntBig>(anIds[i]));
            continue;
        }
        ids.push_back(anIds[i]);
        if (!anParts.empty()) parts.push_back(anParts[i]);
    }
    anIds.swap(ids);
    anParts.swap(parts);
}

void RSCLIPTileList::Intersect(const RSCLIPTileList &other) {
    size_t k = 0, j = 0;
    for (size_t i = 0; i < anIds.size(); i++) {
        while (j < other.anIds.size() && other.anIds[j] < anIds[i]) j++;
        if (j == other.anIds.size()) break;
        if (other.anIds[j] != anIds[i]) continue;
        anIds[k] = anIds[i];
        if (!anParts.empty()) anParts[k] = anParts[i];
        k++;
    }
    anIds.resize(k);
    if (!anParts.empty()) anParts.resize(k);
}

/* ---- opening --------------------------------------------------------------------------------- */

/* The set without a session (no query: the tiles layer needs neither the model nor the vector
 * cache). Parts that do not belong together fail here with the library's message, which names
 * both files; a folder with parts missing or still being written opens with a warning, as a
 * session does. */
bool RSCLIPDataset::OpenSet() {
    if (rsclip_index_set_open(m_osPath.c_str(), RSCLIP_INDEX_READONLY, &m_psSet) != RSCLIP_OK) {
        RSCLIPReportError(nullptr);
        return false;
    }
    int nShards = 0, nMissing = 0, nIncomplete = 0;
    rsclip_index_set_shards(m_psSet, &nShards, &nMissing, &nIncomplete);
    if (nMissing || nIncomplete)
        CPLError(CE_Warning, CPLE_AppDefined,
                 "RSCLIP: %s: %d of %d parts%s%s: showing the tiles that are there",
                 rsclip_index_set_path(m_psSet), PartCount(), nShards,
                 nMissing ? " (some missing)" : "",
                 nIncomplete ? " (some still being indexed)" : "");
    return true;
}

/* ---- scenes ---------------------------------------------------------------------------------- */

int RSCLIPDataset::GetScene(int64_t nSceneId, rsclip_scene_info **out) {
    *out = nullptr;
    for (int p = 0; p < PartCount(); p++) {
        const int rc = rsclip_index_get_scene(rsclip_index_set_part(m_psSet, p), nSceneId, out);
        if (rc != RSCLIP_ERR_NOT_FOUND) return rc;
    }
    rsclip_clear_error();
    return RSCLIP_ERR_NOT_FOUND;
}

bool RSCLIPDataset::ListScenes(std::vector<int64_t> &anIds) {
    if (m_bScenesListed) { /* the count at open, then the subdatasets: one listing */
        anIds = m_anScenes;
        return true;
    }
    anIds.clear();
    rsclip_scene_info **v = nullptr;
    size_t n = 0;
    if (rsclip_index_set_scenes(m_psSet, &v, &n) != RSCLIP_OK) {
        RSCLIPReportError(m_osPath.c_str());
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        anIds.push_back(v[i]->id);
        m_oScenePaths.erase(v[i]->id); /* ScenePath: the path as UTF-8 */
    }
    for (size_t i = 0; i < n; i++) ScenePath(v[i]->id);
    rsclip_index_set_scenes_free(v, n);
    m_anScenes = anIds;
    m_bScenesListed = true;
    return true;
}

/* ---- tiles ----------------------------------------------------------------------------------- */

int RSCLIPDataset::GetTile(int64_t nId, int iPart, rsclip_tile_info **out) {
    *out = nullptr;
    const int nParts = PartCount();
    if (iPart >= 0) return rsclip_index_get_tile(rsclip_index_set_part(m_psSet, iPart), nId, out);
    /* the part of the last lookup first: reads near each other are mostly in one part */
    for (int k = 0; k < nParts; k++) {
        const int p = (m_iLastPart + k) % nParts;
        const int rc = rsclip_index_get_tile(rsclip_index_set_part(m_psSet, p), nId, out);
        if (rc == RSCLIP_ERR_NOT_FOUND) continue;
        if (rc == RSCLIP_OK) m_iLastPart = p;
        return rc;
    }
    rsclip_clear_error();
    return RSCLIP_ERR_NOT_FOUND;
}

bool RSCLIPDataset::CollectTiles(
    RSCLIPTileList &out, const std::function<int(rsclip_index *, int64_t **, size_t *)> &fetch) {
    out.clear();
    const bool bMulti = PartCount() > 1;
    for (int p = 0; p < PartCount(); p++) {
        int64_t *ids = nullptr;
        size_t n = 0;
        if (fetch(rsclip_index_set_part(m_psSet, p), &ids, &n) != RSCLIP_OK) {
            rsclip_free(ids);
            RSCLIPReportError(m_osPath.c_str());
            out.clear();
            return false;
        }
        out.Append(ids, n, p, bMulti);
        rsclip_free(ids);
    }
    out.Sort();
    return true;
}

bool RSCLIPDataset::SceneTiles(int64_t nSceneId, RSCLIPTileList &out) {
    return CollectTiles(out, [nSceneId](rsclip_index *idx, int64_t **ids, size_t *n) {
        return rsclip_index_scene_tiles(idx, nSceneId, ids, nullptr, n);
    });
}

bool RSCLIPDataset::TilesInBBox(const double adfBBox[4], RSCLIPTileList &out) {
    return CollectTiles(out, [adfBBox](rsclip_index *idx, int64_t **ids, size_t *n) {
        return rsclip_index_tiles_in_bbox(idx, adfBBox, 0, ids, n);
    });
}

bool RSCLIPDataset::AllTiles(RSCLIPTileList &out) {
    out.clear();
    const bool bMulti = PartCount() > 1;
    int rc = RSCLIP_OK;
    for (int p = 0; p < PartCount() && rc == RSCLIP_OK; p++) {
        rsclip_index *idx = rsclip_index_set_part(m_psSet, p);
        int64_t *scenes = nullptr;
        size_t ns = 0;
        rc = rsclip_index_list_scenes(idx, &scenes, &ns);
        for (size_t i = 0; i < ns && rc == RSCLIP_OK; i++) {
            int64_t *ids = nullptr;
            size_t n = 0;
            if ((rc = rsclip_index_scene_tiles(idx, scenes[i], &ids, nullptr, &n)) == RSCLIP_OK)
                out.Append(ids, n, p, bMulti);
            rsclip_free(ids);
        }
        rsclip_free(scenes);
    }
    if (rc != RSCLIP_OK) {
        RSCLIPReportError(m_osPath.c_str());
        out.clear();
        return false;
    }
    out.Sort();
    return true;
}
