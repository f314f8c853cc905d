/*
 * rsclip_driver.cpp -- driver registration, Identify/Open, open options, the dataset.
 */
#include "gdal_rsclip.h"

#include "cpl_string.h"

#include <climits>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <new>

/* ---- errors ---------------------------------------------------------------------------------- */

void RSCLIPReportError(const char *context) {
    const char *msg = rsclip_last_error();
    if (!msg || !*msg) msg = rsclip_status_name(static_cast<rsclip_status>(rsclip_last_status()));
    if (context && *context)
        CPLError(CE_Failure, CPLE_AppDefined, "RSCLIP: %s: %s", context, msg);
    else
        CPLError(CE_Failure, CPLE_AppDefined, "RSCLIP: %s", msg);
}

void RSCLIPReportException(const char *where, const std::exception *e) {
    if (e && dynamic_cast<const std::bad_alloc *>(e))
        CPLError(CE_Failure, CPLE_OutOfMemory, "RSCLIP: %s: out of memory", where);
    else
        CPLError(CE_Failure, CPLE_AppDefined, "RSCLIP: %s: internal error (%s)", where,
                 e ? e->what() : "unknown exception");
}

/* The library's log sink: debug/info to CPLDebug (CPL_DEBUG=ON shows them), warnings to
 * CPLError(CE_Warning). Failures are reported from their return codes, not from here. */
static void LogToCPL(int level, const char *msg, void *) {
    if (level >= RSCLIP_LOG_WARN)
        CPLError(CE_Warning, CPLE_AppDefined, "RSCLIP: %s", msg);
    else
        CPLDebug("RSCLIP", "%s", msg);
}

/* ---- open options ---------------------------------------------------------------------------- */

static bool ParseInt(const char *name, const char *value, GIntBig lo, GIntBig hi, GIntBig *out) {
    char *end = nullptr;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    while (end && (*end == ' ' || *end == '\t')) end++;
    if (end == value || !end || *end || errno || v < lo || v > hi) {
        CPLError(CE_Failure, CPLE_IllegalArg,
                 "RSCLIP: %s option %s=%s: expected an integer from " CPL_FRMT_GIB
                 " to " CPL_FRMT_GIB,
                 STARTS_WITH(name, "RSCLIP_") ? "configuration" : "open", name, value, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

static bool ParseBool(const char *name, const char *value, bool *out) {
    if (EQUAL(value, "YES") || EQUAL(value, "TRUE") || EQUAL(value, "ON") || EQUAL(value, "1"))
        *out = true;
    else if (EQUAL(value, "NO") || EQUAL(value, "FALSE") || EQUAL(value, "OFF") ||
             EQUAL(value, "0"))
        *out = false;
    else {
        CPLError(CE_Failure, CPLE_IllegalArg, "RSCLIP: open option %s=%s: expected YES or NO", name,
                 value);
        return false;
    }
    return true;
}

/* The options that shape a query, as NAME=value (values cut at 40 bytes), for the one message
 * that reports a query the library refuses: its reason names the field (k, min_prob, template,
 * after...), this names the options the user gave. */
static std::string QueryOptionsGiven(CSLConstList papszOpts) {
    static const char *const apszNames[] = {"QUERY", "LIKE_TILE", "NEGATIVE", "TEMPLATE",
                                            "TOP_K", "MIN_PROB",  "BBOX",     "AOI",
                                            "AFTER", "BEFORE",    "LATEST",   "CHANGE"};
    std::string os;
    for (const char *pszName : apszNames) {
        const char *v = CSLFetchNameValue(papszOpts, pszName);
        if (!v) continue;
        std::string osValue(v);
        if (osValue.size() > 40) osValue = osValue.substr(0, 37) + "...";
        os += (os.empty() ? "" : " ") + std::string(pszName) + "=" + osValue;
    }
    return os;
}

/* Only converts values: every rule of the query itself is the library's (rsclip_query_check,
 * rsclip_change_check), reported with the options given. */
bool RSCLIPQueryOptions::Parse(CSLConstList papszOpts) {
    const char *v;
    if ((v = CSLFetchNameValue(papszOpts, "QUERY")) != nullptr) {
        osQuery = v;
        bQuery = true; /* an empty QUERY is a query the library refuses, not no query */
    }
    char **papszNeg = CSLFetchNameValueMultiple(papszOpts, "NEGATIVE");
    for (char **p = papszNeg; p && *p; p++) { /* a blank one is kept: the library refuses it */
        if (!**p) {
            aosNegatives.push_back("");
            continue;
        }
        char **parts = CSLTokenizeString2(
            *p, "|", CSLT_STRIPLEADSPACES | CSLT_STRIPENDSPACES | CSLT_ALLOWEMPTYTOKENS);
        for (char **q = parts; q && *q; q++) aosNegatives.push_back(*q);
        CSLDestroy(parts);
    }
    CSLDestroy(papszNeg);
    if ((v = CSLFetchNameValue(papszOpts, "TEMPLATE")) != nullptr) {
        osTemplate = v;
        bTemplate = true;
    }
    if ((v = CSLFetchNameValue(papszOpts, "MODEL")) != nullptr) osModel = v;
    GIntBig n;
    if ((v = CSLFetchNameValue(papszOpts, "TOP_K")) != nullptr) {
        /* any int: the range (1..RSCLIP_QUERY_MAX_K) is the library's */
        if (!ParseInt("TOP_K", v, INT_MIN, INT_MAX, &n)) return false;
        nTopK = static_cast<int>(n);
    }
    if ((v = CSLFetchNameValue(papszOpts, "LIKE_TILE")) != nullptr) {
        /* a tile id; 0 would silently mean no tile */
        if (!ParseInt("LIKE_TILE", v, 1, std::numeric_limits<GIntBig>::max(), &n)) return false;
        nLikeTile = n;
    }
    if ((v = CSLFetchNameValue(papszOpts, "STEP")) != nullptr) {
        if (!ParseInt("STEP", v, 1, INT_MAX, &n)) return false;
        nStep = static_cast<int>(n);
    }
    /* the heatmap's cell cap: the open option, else the configuration option */
    const char *pszCells = "MAX_CELLS";
    if ((v = CSLFetchNameValue(papszOpts, pszCells)) != nullptr ||
        (v = CPLGetConfigOption(pszCells = "RSCLIP_HEATMAP_MAX_CELLS", nullptr)) != nullptr) {
        if (!ParseInt(pszCells, v, 1, std::numeric_limits<GIntBig>::max(), &n)) return false;
        nMaxCells = n;
    }
    if ((v = CSLFetchNameValue(papszOpts, "BBOX")) != nullptr) {
        const CPLStringList aos(
            CSLTokenizeString2(v, ",", CSLT_STRIPLEADSPACES | CSLT_STRIPENDSPACES));
        bool ok = aos.size() == 4;
        for (int i = 0; ok && i < 4; i++) {
            char *end = nullptr;
            adfBBox[i] = CPLStrtod(aos[i], &end);
            ok = end != aos[i] && *end == '\0';
        }
        if (!ok) {
            CPLError(CE_Failure, CPLE_IllegalArg,
                     "RSCLIP: open option BBOX=%s: expected west,south,east,north in degrees", v);
            return false;
        }
        bHasBBox = true;
    }
    if ((v = CSLFetchNameValue(papszOpts, "AOI")) != nullptr) osAOI = v;
    if ((v = CSLFetchNameValue(papszOpts, "MIN_PROB")) != nullptr) {
        char *end = nullptr;
        dfMinProb = CPLStrtod(v, &end);
        if (end == v || *end) {
            CPLError(CE_Failure, CPLE_IllegalArg,
                     "RSCLIP: open option MIN_PROB=%s: expected a probability from 0 to 1", v);
            return false;
        }
    }
    if ((v = CSLFetchNameValue(papszOpts, "MERGE")) != nullptr && !ParseBool("MERGE", v, &bMerge))
        return false;
    if ((v = CSLFetchNameValue(papszOpts, "AFTER")) != nullptr) {
        osAfter = v;
        bAfter = true;
    }
    if ((v = CSLFetchNameValue(papszOpts, "BEFORE")) != nullptr) {
        osBefore = v;
        bBefore = true;
    }
    if ((v = CSLFetchNameValue(papszOpts, "LATEST")) != nullptr &&
        !ParseBool("LATEST", v, &bLatest))
        return false;
    if ((v = CSLFetchNameValue(papszOpts, "CHANGE")) != nullptr) {
        if (rsclip_change_periods(v, &sFrom, &sTo) != RSCLIP_OK) {
            CPLError(CE_Failure, CPLE_IllegalArg, "RSCLIP: open option CHANGE=%s: %s", v,
                     rsclip_last_error());
            rsclip_clear_error();
            return false;
        }
        bChange = true;
    }
    /* The driver's own rule, which no query can express: without QUERY or LIKE_TILE the dataset
     * lists the index (tiles, scenes) and runs no query, so an option that only shapes one would
     * be silently ignored. */
    const char *pszNeedsQuery = bMerge                  ? "MERGE"
                                : !aosNegatives.empty() ? "NEGATIVE"
                                : bHasBBox              ? "BBOX"
                                : !osAOI.empty()        ? "AOI"
                                : bAfter                ? "AFTER"
                                : bBefore               ? "BEFORE"
                                : bLatest               ? "LATEST"
                                : bChange               ? "CHANGE"
                                                        : nullptr;
    if (!HasQuery()) {
        if (!pszNeedsQuery) return true;
        CPLError(CE_Failure, CPLE_IllegalArg, "RSCLIP: open option %s needs QUERY (or LIKE_TILE)",
                 pszNeedsQuery);
        return false;
    }
    std::vector<const char *> negs;
    const rsclip_query q = ToQuery(negs);
    if ((bChange ? rsclip_change_check(&q, &sFrom, &sTo) : rsclip_query_check(&q)) != RSCLIP_OK) {
        CPLError(CE_Failure, CPLE_IllegalArg, "RSCLIP: open options %s: %s",
                 QueryOptionsGiven(papszOpts).c_str(), rsclip_last_error());
        rsclip_clear_error();
        return false;
    }
    return true;
}

rsclip_query RSCLIPQueryOptions::ToQuery(std::vector<const char *> &negs) const {
    rsclip_query q = rsclip_query_default();
    negs.clear();
    for (const auto &s : aosNegatives) negs.push_back(s.c_str());
    if (bQuery) q.text = osQuery.c_str();
    if (bTemplate) q.template_str = osTemplate.c_str();
    q.negatives = negs.empty() ? nullptr : negs.data();
    q.n_negatives = static_cast<int>(negs.size());
    q.like_tile = nLikeTile;
    q.k = nTopK;
    q.min_prob = static_cast<float>(dfMinProb);
    if (bHasBBox) {
        q.has_bbox = 1;
        memcpy(q.bbox, adfBBox, sizeof q.bbox);
    }
    if (!osAOIWkt.empty()) q.aoi_wkt = osAOIWkt.c_str();
    if (bAfter) q.after = osAfter.c_str();
    if (bBefore) q.before = osBefore.c_str();
    q.latest = bLatest ? 1 : 0;
    return q;
}

/* ---- dataset --------------------------------------------------------------------------------- */

RSCLIPDataset::RSCLIPDataset() {
    memset(&m_sInfo, 0, sizeof m_sInfo);
    m_poWGS84 = new OGRSpatialReference();
    m_poWGS84->SetWellKnownGeogCS("WGS84");
    m_poWGS84->SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
    m_oSceneSRS.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
}

RSCLIPDataset::~RSCLIPDataset() {
    m_apoLayers.clear(); /* layers use the session and the results */
    rsclip_regions_free(m_pasRegions, m_nRegions);
    rsclip_results_free(m_psHits);
    rsclip_changes_free(m_psChanges);
    rsclip_heatmap_free(m_psHeat);
    if (m_psSession)
        rsclip_session_close(m_psSession); /* with its set */
    else
        rsclip_index_set_close(m_psSet);
    m_poWGS84->Release();
}

OGRLayer *RSCLIPDataset::GetLayer(int i) {
    if (i < 0 || i >= GetLayerCount()) return nullptr;
    return m_apoLayers[static_cast<size_t>(i)].get();
}

CPLErr RSCLIPDataset::GetGeoTransform(double *padf) {
    if (!m_psHeat) return GDALDataset::GetGeoTransform(padf);
    memcpy(padf, m_psHeat->geotransform, sizeof m_psHeat->geotransform);
    return CE_None;
}

const OGRSpatialReference *RSCLIPDataset::GetSpatialRef() const {
    return nBands > 0 && !m_oSceneSRS.IsEmpty() ? &m_oSceneSRS : nullptr;
}

const char *RSCLIPDataset::ScenePath(int64_t nSceneId) {
    auto it = m_oScenePaths.find(nSceneId);
    if (it != m_oScenePaths.end()) return it->second.c_str();
    rsclip_scene_info *si = nullptr;
    std::string path;
    if (GetScene(nSceneId, &si) == RSCLIP_OK) path = si->path;
    rsclip_free(si);
    rsclip_clear_error();
    if (!CPLIsUTF8(path.c_str(), -1)) { /* a path in a legacy encoding: shown as Latin-1 */
        char *utf8 = CPLRecode(path.c_str(), CPL_ENC_ISO8859_1, CPL_ENC_UTF8);
        path = utf8;
        CPLFree(utf8);
    }
    return m_oScenePaths.emplace(nSceneId, path).first->second.c_str();
}

/* Open the index (a file or a folder of parts): a query session when there is a query, else the
 * plain read-only index set (OpenSet). */
bool RSCLIPDataset::OpenIndex() {
    if (m_oOpts.HasQuery()) {
        rsclip_session_params sp = rsclip_session_default_params();
        if (!m_oOpts.osModel.empty()) sp.model = m_oOpts.osModel.c_str();
        const char *pszThreads = CPLGetConfigOption("GDAL_NUM_THREADS", nullptr);
        if (pszThreads && !EQUAL(pszThreads, "ALL_CPUS"))
            sp.n_threads = std::max(1, atoi(pszThreads));
        if (rsclip_session_open(m_osPath.c_str(), &sp, &m_psSession) != RSCLIP_OK) {
            RSCLIPReportError(nullptr);
            return false;
        }
        m_psSet = rsclip_session_set(m_psSession);
    } else if (!OpenSet()) {
        return false;
    }
    if (rsclip_index_set_info(m_psSet, &m_sInfo) != RSCLIP_OK) {
        RSCLIPReportError(m_osPath.c_str());
        return false;
    }
    m_nScenes = m_sInfo.n_scenes; /* a folder's info counts a scene once per part holding it */
    if (PartCount() > 1) {
        std::vector<int64_t> anScenes;
        if (!ListScenes(anScenes)) return false;
        m_nScenes = static_cast<GIntBig>(anScenes.size());
    }
    if (m_nSceneId > 0) {
        rsclip_scene_info *si = nullptr;
        const int rc = GetScene(m_nSceneId, &si);
        if (rc != RSCLIP_OK) {
            if (rc == RSCLIP_ERR_NOT_FOUND)
                CPLError(CE_Failure, CPLE_OpenFailed, "RSCLIP: %s: no scene " CPL_FRMT_GIB,
                         m_osPath.c_str(), m_nSceneId);
            else
                RSCLIPReportError(m_osPath.c_str());
            return false;
        }
        m_oScenePaths[m_nSceneId] = si->path;
        rsclip_free(si);
    }
    return true;
}

/* Run the query once, at open: a bad model, text, tile id, BBOX or AOI fails the open, and the
 * hits (and regions) are what the layers show. */
bool RSCLIPDataset::RunQuery() {
    if (!m_oOpts.osAOI.empty()) {
        char *wkt = nullptr;
        if (rsclip_aoi_read(m_oOpts.osAOI.c_str(), &wkt) != RSCLIP_OK) {
            RSCLIPReportError("open option AOI");
            return false;
        }
        m_oOpts.osAOIWkt = wkt;
        rsclip_free(wkt);
    }
    std::vector<const char *> negs;
    rsclip_query q = m_oOpts.ToQuery(negs);
    if (m_nSceneId > 0) q.scene_id = m_nSceneId;
    const char *pszWhy = nullptr, *pszNote = nullptr;
    if (m_oOpts.bChange) {
        if (rsclip_session_change(m_psSession, &q, &m_oOpts.sFrom, &m_oOpts.sTo, &m_psChanges) !=
            RSCLIP_OK) {
            RSCLIPReportError(m_osPath.c_str());
            return false;
        }
        if (m_oOpts.bMerge &&
            rsclip_change_regions(m_psChanges, &m_pasRegions, &m_nRegions) != RSCLIP_OK) {
            RSCLIPReportError("merging the changes into regions");
            return false;
        }
        pszWhy = m_psChanges->why_empty;
        pszNote = m_psChanges->note;
    } else {
        if (rsclip_session_search(m_psSession, &q, &m_psHits) != RSCLIP_OK) {
            RSCLIPReportError(m_osPath.c_str());
            return false;
        }
        if (m_oOpts.bMerge && rsclip_regions_merge(m_psHits->hits, m_psHits->n, &m_pasRegions,
                                                   &m_nRegions) != RSCLIP_OK) {
            RSCLIPReportError("merging hits into regions");
            return false;
        }
        pszWhy = m_psHits->why_empty;
        pszNote = m_psHits->note;
    }
    /* what the CLI prints to stderr, as metadata: why nothing was found (WHY_EMPTY), what a
     * filter left out or how far a change query looked (NOTE) */
    if (pszWhy) {
        CPLDebug("RSCLIP", "no %s: %s", m_oOpts.bChange ? "changes" : "hits", pszWhy);
        GDALDataset::SetMetadataItem("WHY_EMPTY", pszWhy);
    }
    if (pszNote) {
        CPLDebug("RSCLIP", "note: %s", pszNote);
        GDALDataset::SetMetadataItem("NOTE", pszNote);
    }
    return true;
}

/* One subdataset per scene: a scene spread over the parts of a folder is listed once. */
void RSCLIPDataset::ListSubdatasets() {
    std::vector<int64_t> ids;
    if (!ListScenes(ids)) return;
    const size_t n = ids.size();
    CPLStringList aosSub;
    const std::string what =
        !m_oOpts.osQuery.empty()
            ? std::string("'") + m_oOpts.osQuery + "'"
            : std::string("tile ") + CPLSPrintf(CPL_FRMT_GIB, m_oOpts.nLikeTile);
    for (size_t i = 0; i < n; i++) {
        const int k = static_cast<int>(i) + 1;
        aosSub.SetNameValue(CPLSPrintf("SUBDATASET_%d_NAME", k), Name(ids[i]).c_str());
        aosSub.SetNameValue(CPLSPrintf("SUBDATASET_%d_DESC", k),
                            CPLSPrintf("Heatmap of %s on scene " CPL_FRMT_GIB " (%s)", what.c_str(),
                                       static_cast<GIntBig>(ids[i]), ScenePath(ids[i])));
    }
    if (!aosSub.empty()) GDALDataset::SetMetadata(aosSub.List(), "SUBDATASETS");
}

/* ---- Identify / Open ------------------------------------------------------------------------- */

/* part-IIIII-of-NNNNN.gpkg, I < N: the name a worker gives its part of a sharded index. */
static bool IsPartName(const char *pszName) {
    int i = -1, n = -1;
    char szTail[8] = "";
    if (strlen(pszName) != strlen("part-00000-of-00000.gpkg") ||
        sscanf(pszName, "part-%5d-of-%5d%7s", &i, &n, szTail) != 3)
        return false;
    return EQUAL(szTail, ".gpkg") && i >= 0 && n >= 1 && i < n &&
           strcmp(pszName, CPLSPrintf("part-%05d-of-%05d.gpkg", i, n)) == 0;
}

/* A folder holding a part: its names only, the first part found ends the listing. */
static bool IsPartFolder(const char *pszPath) {
    VSIDIR *psDir = VSIOpenDir(pszPath, 0, nullptr);
    if (!psDir) return false;
    bool bFound = false;
    for (const VSIDIREntry *e; !bFound && (e = VSIGetNextDirEntry(psDir)) != nullptr;)
        bFound = IsPartName(e->pszName);
    VSICloseDir(psDir);
    return bFound;
}

/* "RSCLIP:..." (an index file or a folder of parts), or the bare path of a folder of parts
 * (nothing else opens one; a bare index file stays GeoPackage's). Cheap: no file is opened. */
int RSCLIPDataset::Identify(GDALOpenInfo *poOpenInfo) {
    if (STARTS_WITH_CI(poOpenInfo->pszFilename, RSCLIP_PREFIX)) return TRUE;
    return poOpenInfo->bIsDirectory && IsPartFolder(poOpenInfo->pszFilename);
}

#define RSCLIP_OPTION_SEP "|option:"

/* "RSCLIP:PATH[:SCENE_ID][|option:KEY=VALUE]...". The path may itself hold ':' (/vsicurl/ URLs):
 * a trailing ":digits" is a scene id unless the whole text names an existing file. Options in
 * the name (QGIS's URI form) let a name alone reopen the same dataset: GDAL does that (the SQLite
 * dialect opens a second cursor so); open options given beside the name win over them. */
static void SplitName(const char *pszName, std::string &osPath, GIntBig &nScene,
                      CPLStringList &aosOptions) {
    nScene = 0;
    if (!STARTS_WITH_CI(pszName, RSCLIP_PREFIX)) { /* a bare folder of parts */
        osPath = pszName;
        return;
    }
    osPath = pszName + strlen(RSCLIP_PREFIX);
    size_t sep = osPath.find(RSCLIP_OPTION_SEP);
    if (sep != std::string::npos) {
        std::string rest = osPath.substr(sep);
        osPath.resize(sep);
        const size_t n = strlen(RSCLIP_OPTION_SEP);
        for (size_t b = 0; b < rest.size();) {
            size_t e = rest.find(RSCLIP_OPTION_SEP, b + n);
            if (e == std::string::npos) e = rest.size();
            std::string kv = rest.substr(b + n, e - b - n);
            size_t eq = kv.find('=');
            if (eq != std::string::npos && eq > 0)
                aosOptions.AddNameValue(kv.substr(0, eq).c_str(), kv.c_str() + eq + 1);
            b = e;
        }
    }
    size_t colon = osPath.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == osPath.size()) return;
    for (size_t i = colon + 1; i < osPath.size(); i++)
        if (osPath[i] < '0' || osPath[i] > '9') return;
    VSIStatBufL st;
    if (VSIStatL(osPath.c_str(), &st) == 0) return;
    nScene = CPLAtoGIntBig(osPath.c_str() + colon + 1);
    osPath.resize(colon);
}

/* The name that reopens this dataset (or one of its scenes) with the same options. */
std::string RSCLIPDataset::Name(GIntBig nSceneId) const {
    std::string os = RSCLIP_PREFIX + m_osPath;
    if (nSceneId > 0) os += CPLSPrintf(":" CPL_FRMT_GIB, nSceneId);
    for (int i = 0; i < m_aosOptions.size(); i++)
        os += std::string(RSCLIP_OPTION_SEP) + m_aosOptions[i];
    return os;
}

GDALDataset *RSCLIPDataset::Open(GDALOpenInfo *poOpenInfo) {
    try {
        if (!Identify(poOpenInfo)) return nullptr;
        /* Update access is not refused here: ogrinfo -sql asks for it first and would print an
         * error before retrying read-only. The dataset is read-only whatever was asked (as GDAL's
         * GTFS driver): every write fails with a clear error. */
        const bool bRaster = (poOpenInfo->nOpenFlags & GDAL_OF_RASTER) != 0;
        const bool bVector = (poOpenInfo->nOpenFlags & GDAL_OF_VECTOR) != 0;

        auto poDS = std::make_unique<RSCLIPDataset>();
        CPLStringList &aosOpts = poDS->m_aosOptions;
        SplitName(poOpenInfo->pszFilename, poDS->m_osPath, poDS->m_nSceneId, aosOpts);
        if (poDS->m_osPath.empty()) {
            CPLError(CE_Failure, CPLE_OpenFailed,
                     "RSCLIP: no index given: use RSCLIP:/path/to/index.gpkg, or "
                     "RSCLIP:/path/to/folder/ for a sharded index");
            return nullptr;
        }
        for (CSLConstList p = poOpenInfo->papszOpenOptions; p && *p; p++) {
            char *pszKey = nullptr;
            const char *pszValue = CPLParseNameValue(*p, &pszKey);
            /* NEGATIVE may repeat: keep each; any other key: the last one given */
            if (pszKey && pszValue && !EQUAL(pszKey, "NEGATIVE"))
                aosOpts.SetNameValue(pszKey, nullptr);
            if (pszKey && pszValue) aosOpts.AddNameValue(pszKey, pszValue);
            CPLFree(pszKey);
        }
        if (!poDS->m_oOpts.Parse(aosOpts.List())) return nullptr;
        const bool bQuery = poDS->m_oOpts.HasQuery();
        if (bRaster && !bVector && !bQuery) {
            CPLError(CE_Failure, CPLE_OpenFailed,
                     "RSCLIP: %s: the heatmap rasters need a QUERY (or LIKE_TILE) open option, "
                     "e.g. gdalinfo -oo QUERY=lake RSCLIP:%s; the tiles layer opens as "
                     "vector (ogrinfo)",
                     poDS->m_osPath.c_str(), poDS->m_osPath.c_str());
            return nullptr;
        }
        if (!poDS->OpenIndex()) return nullptr;

        /* the hits serve the layers and check the query; a scene's heatmap alone needs none */
        if (bQuery && (bVector || poDS->m_nSceneId <= 0) && !poDS->RunQuery()) return nullptr;

        if (bRaster && bQuery) {
            if (poDS->m_nSceneId > 0) {
                if (!poDS->BuildHeatmap()) return nullptr;
            } else {
                poDS->ListSubdatasets();
            }
        }
        if (bVector) {
            RSCLIPDataset *ds = poDS.get();
            ds->m_apoLayers.emplace_back(new RSCLIPTilesLayer(ds));
            using Kind = RSCLIPHitsLayer::Kind;
            if (bQuery)
                ds->m_apoLayers.emplace_back(
                    new RSCLIPHitsLayer(ds, ds->m_oOpts.bChange ? Kind::Changes : Kind::Hits));
            if (bQuery && ds->m_oOpts.bMerge)
                ds->m_apoLayers.emplace_back(new RSCLIPHitsLayer(ds, Kind::Regions));
        }
        poDS->SetDescription(aosOpts.empty() ? poOpenInfo->pszFilename
                                             : poDS->Name(poDS->m_nSceneId).c_str());
        if (bQuery) {
            if (!poDS->m_oOpts.osQuery.empty())
                poDS->GDALDataset::SetMetadataItem("QUERY", poDS->m_oOpts.osQuery.c_str());
            else
                poDS->GDALDataset::SetMetadataItem(
                    "LIKE_TILE", CPLSPrintf(CPL_FRMT_GIB, poDS->m_oOpts.nLikeTile));
        }
        poDS->GDALDataset::SetMetadataItem("MODEL", poDS->m_sInfo.model_id);
        poDS->GDALDataset::SetMetadataItem(
            "TILES", CPLSPrintf(CPL_FRMT_GIB, static_cast<GIntBig>(poDS->m_sInfo.n_tiles)));
        poDS->GDALDataset::SetMetadataItem("SCENES", CPLSPrintf(CPL_FRMT_GIB, poDS->m_nScenes));
        int nShards = 0;
        rsclip_index_set_shards(poDS->m_psSet, &nShards, nullptr, nullptr);
        if (nShards > 0) /* a folder: its parts */
            poDS->GDALDataset::SetMetadataItem("PARTS",
                                               CPLSPrintf("%d of %d", poDS->PartCount(), nShards));
        return poDS.release();
    } catch (const std::exception &e) {
        RSCLIPReportException("open", &e);
    } catch (...) {
        RSCLIPReportException("open", nullptr);
    }
    return nullptr;
}

/* ---- registration ---------------------------------------------------------------------------- */

#define RSCLIP_STR(x) #x
#define RSCLIP_XSTR(x) RSCLIP_STR(x)
#define RSCLIP_TOP_K_MAX RSCLIP_XSTR(RSCLIP_QUERY_MAX_K)
#define RSCLIP_OPEN_OPTIONS                                                                        \
    "<OpenOptionList>"                                                                             \
    "  <Option name='QUERY' type='string' description='Text to search for (put into TEMPLATE). "   \
    "Adds the hits layer (and regions with MERGE=YES) and the heatmap subdatasets'/>"              \
    "  <Option name='NEGATIVE' type='string' description='Text to push down the ranking; repeat "  \
    "the option or separate texts with |'/>"                                                       \
    "  <Option name='TOP_K' type='int' min='1' max='" RSCLIP_TOP_K_MAX "' default='100' "          \
    "description='Number of hits'/>"                                                               \
    "  <Option name='MIN_PROB' type='float' min='0' max='1' default='0' description='Drop hits "   \
    "whose probability is below this'/>"                                                           \
    "  <Option name='TEMPLATE' type='string' default='" RSCLIP_DEFAULT_TEMPLATE "' "               \
    "description='Prompt template; {} is replaced by the text of QUERY and NEGATIVE'/>"            \
    "  <Option name='MODEL' type='string' description='Model folder, name (base, large) or repo "  \
    "id; default: the model recorded in the index'/>"                                              \
    "  <Option name='MERGE' type='boolean' default='NO' description='Add the regions layer: hits " \
    "whose footprints touch or overlap, merged'/>"                                                 \
    "  <Option name='LIKE_TILE' type='integer' min='1' description='Query by example: the tile "   \
    "with this id (the FID of the tiles layer) instead of QUERY'/>"                                \
    "  <Option name='BBOX' type='string' description='Search only tiles meeting this box: "        \
    "west,south,east,north in degrees (a spatial filter only selects among the hits)'/>"           \
    "  <Option name='AOI' type='string' description='Search only tiles meeting the polygons of "   \
    "this vector file'/>"                                                                          \
    "  <Option name='STEP' type='int' min='1' description='Heatmap cell size in scene pixels; "    \
    "default: the tiling stride (recorded, or found from the stored tile windows)'/>"              \
    "  <Option name='MAX_CELLS' type='int' min='1' description='Refuse a heatmap with more "       \
    "cells (default %lld, or the RSCLIP_HEATMAP_MAX_CELLS configuration option)'/>"                \
    "  <Option name='AFTER' type='string' description='Only scenes taken in or after this time "   \
    "(ISO 8601: 2019, 2019-06, 2019-06-01, 2019-06-01T10:00Z); scenes without a time are left "    \
    "out'/>"                                                                                       \
    "  <Option name='BEFORE' type='string' description='Only scenes taken in or before this time " \
    "(ISO 8601; BEFORE=2020 includes all of 2020)'/>"                                              \
    "  <Option name='LATEST' type='boolean' default='NO' description='Among the hits, only the "   \
    "most recent tile at each place'/>"                                                            \
    "  <Option name='CHANGE' type='string' description='FROM/TO, e.g. 2019/2023: the changes "     \
    "layer (in place of hits): places seen in both periods, ranked by the rise of the "            \
    "probability; not with AFTER, BEFORE or LATEST'/>"                                             \
    "  <Option name='NOLOCK' type='boolean' description='Accepted and ignored (QGIS passes it to " \
    "files named *.gpkg); the index is always opened read-only'/>"                                 \
    "</OpenOptionList>"

extern "C" {
CPL_DLL void GDALRegister_RSCLIP();
CPL_DLL void GDALRegisterMe();
}

void GDALRegister_RSCLIP() {
    if (!GDAL_CHECK_VERSION("RSCLIP")) return;
    if (GDALGetDriverByName("RSCLIP") != nullptr) return;
    try {
        rsclip_set_log(LogToCPL, nullptr);
        auto poDriver = std::make_unique<GDALDriver>();
        poDriver->SetDescription("RSCLIP");
        poDriver->SetMetadataItem(GDAL_DCAP_RASTER, "YES");
        poDriver->SetMetadataItem(GDAL_DCAP_VECTOR, "YES");
        poDriver->SetMetadataItem(GDAL_DMD_LONGNAME,
                                  "rsclip index: text search over GeoTIFF tiles (Git-RSCLIP)");
        poDriver->SetMetadataItem(GDAL_DMD_CONNECTION_PREFIX, RSCLIP_PREFIX);
        poDriver->SetMetadataItem(GDAL_DMD_SUBDATASETS, "YES");
        CPLString osOptions;
        osOptions.Printf(RSCLIP_OPEN_OPTIONS, static_cast<long long>(RSCLIP_HEATMAP_MAX_CELLS));
        poDriver->SetMetadataItem(GDAL_DMD_OPENOPTIONLIST, osOptions.c_str());
        poDriver->SetMetadataItem(GDAL_DMD_SUPPORTED_SQL_DIALECTS, "OGRSQL SQLITE");
        poDriver->pfnIdentify = RSCLIPDataset::Identify;
        poDriver->pfnOpen = RSCLIPDataset::Open;
        GetGDALDriverManager()->RegisterDriver(poDriver.release());
    } catch (const std::exception &e) {
        RSCLIPReportException("register", &e);
    } catch (...) {
        RSCLIPReportException("register", nullptr);
    }
}

void GDALRegisterMe() {
    GDALRegister_RSCLIP();
}
