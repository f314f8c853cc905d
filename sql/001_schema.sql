-- rsclip index schema, version 1.
--
-- The index is a GeoPackage 1.3 file (OGC 12-128r18): GIS tools open its `tiles` layer (tile
-- footprints, POLYGON, EPSG:4326) and `scenes` table directly. GeoPackage owns the SQLite header
-- fields (application_id 'GPKG', user_version 10300), so rsclip's own schema version lives in
-- rsclip_meta under key 'schema_version', next to the marker key 'format' = 'rsclip-index'.
--
-- Each sql/NNN_*.sql file moves the schema from version NNN-1 to NNN inside one transaction and
-- ends by recording NNN. 001 creates everything in an empty database. The library registers the
-- SQL functions ST_IsEmpty/ST_MinX/ST_MaxX/ST_MinY/ST_MaxY that the R-tree triggers call (as every
-- GeoPackage writer must); GDAL/QGIS register their own.

PRAGMA application_id = 1196444487; -- 0x47504B47 'GPKG'
PRAGMA user_version = 10300;        -- GeoPackage 1.3.0

-- GeoPackage core tables (spec clauses 1.1.2, 1.1.3, 2.1.5, 2.1.6 + Annex F.3 R-tree extension)

CREATE TABLE gpkg_spatial_ref_sys (
    srs_name TEXT NOT NULL,
    srs_id INTEGER PRIMARY KEY,
    organization TEXT NOT NULL,
    organization_coordsys_id INTEGER NOT NULL,
    definition TEXT NOT NULL,
    description TEXT
);

INSERT INTO gpkg_spatial_ref_sys VALUES
('WGS 84 geodetic', 4326, 'EPSG', 4326,
 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]',
 'longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid'),
('Undefined cartesian SRS', -1, 'NONE', -1, 'undefined', 'undefined cartesian coordinate reference system'),
('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', 'undefined geographic coordinate reference system');

CREATE TABLE gpkg_contents (
    table_name TEXT NOT NULL PRIMARY KEY,
    data_type TEXT NOT NULL,
    identifier TEXT UNIQUE,
    description TEXT DEFAULT '',
    last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    min_x DOUBLE,
    min_y DOUBLE,
    max_x DOUBLE,
    max_y DOUBLE,
    srs_id INTEGER,
    CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id)
);

CREATE TABLE gpkg_geometry_columns (
    table_name TEXT NOT NULL,
    column_name TEXT NOT NULL,
    geometry_type_name TEXT NOT NULL,
    srs_id INTEGER NOT NULL,
    z TINYINT NOT NULL,
    m TINYINT NOT NULL,
    CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
    CONSTRAINT uk_gc_table_name UNIQUE (table_name),
    CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
    CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id)
);

CREATE TABLE gpkg_extensions (
    table_name TEXT,
    column_name TEXT,
    extension_name TEXT NOT NULL,
    definition TEXT NOT NULL,
    scope TEXT NOT NULL,
    CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name)
);

-- rsclip tables

-- Key/value facts about the whole index: format, schema_version, model_id, model_fingerprint,
-- embed_dim, dtype, preprocessing, tool_version, created_at, updated_at.
CREATE TABLE rsclip_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- One row per input raster. status goes 'indexing' -> 'complete'; a scene left 'indexing' by an
-- interrupted run is resumed (its stored tiles are kept). file_size/mtime_ns/checksum identify the
-- file version for incremental runs. gt0..gt5 are the GDAL geotransform.
CREATE TABLE scenes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    file_size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    checksum TEXT,
    crs_wkt TEXT,
    epsg INTEGER,
    gt0 DOUBLE, gt1 DOUBLE, gt2 DOUBLE, gt3 DOUBLE, gt4 DOUBLE, gt5 DOUBLE,
    width MEDIUMINT NOT NULL,
    height MEDIUMINT NOT NULL,
    bands TEXT,
    scaling TEXT,
    status TEXT NOT NULL DEFAULT 'indexing' CHECK (status IN ('indexing', 'complete')),
    tiles_planned INTEGER NOT NULL DEFAULT 0,
    tiles_stored INTEGER NOT NULL DEFAULT 0,
    tiles_skipped INTEGER NOT NULL DEFAULT 0,
    started_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    indexed_at DATETIME
);

-- The feature layer: one row per stored tile. geom is the densified WGS 84 footprint (GeoPackage
-- geometry blob), lon/lat its centre, n*_x/n*_y the window corners (upper-left, upper-right,
-- lower-right, lower-left) in the scene CRS.
CREATE TABLE tiles (
    fid INTEGER PRIMARY KEY AUTOINCREMENT,
    geom POLYGON,
    scene_id INTEGER NOT NULL REFERENCES scenes(id) ON DELETE CASCADE,
    xoff MEDIUMINT NOT NULL,
    yoff MEDIUMINT NOT NULL,
    xsize MEDIUMINT NOT NULL,
    ysize MEDIUMINT NOT NULL,
    valid_fraction REAL NOT NULL,
    lon DOUBLE NOT NULL,
    lat DOUBLE NOT NULL,
    ul_x DOUBLE, ul_y DOUBLE, ur_x DOUBLE, ur_y DOUBLE,
    lr_x DOUBLE, lr_y DOUBLE, ll_x DOUBLE, ll_y DOUBLE,
    CONSTRAINT uk_tiles_window UNIQUE (scene_id, xoff, yoff, xsize, ysize)
);

-- One L2-normalised embedding per tile: vec = embed_dim little-endian float32. The rowid is the
-- tile id, so a scan in rowid order reads the vectors in tile order.
CREATE TABLE embeddings (
    tile_id INTEGER PRIMARY KEY REFERENCES tiles(fid) ON DELETE CASCADE,
    vec BLOB NOT NULL
);

-- GIS tools delete features without enabling foreign keys: keep embeddings and the per-scene
-- tile counts in step whoever writes.
CREATE TRIGGER tiles_delete_embedding AFTER DELETE ON tiles
BEGIN
    DELETE FROM embeddings WHERE tile_id = OLD.fid;
END;

-- rsclip_meta 'n_embeddings' counts the embeddings rows (counting the table itself would read
-- every vector page).
CREATE TRIGGER embeddings_count_insert AFTER INSERT ON embeddings
BEGIN
    UPDATE rsclip_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'n_embeddings';
END;

CREATE TRIGGER embeddings_count_delete AFTER DELETE ON embeddings
BEGIN
    UPDATE rsclip_meta SET value = CAST(value AS INTEGER) - 1 WHERE key = 'n_embeddings';
END;

CREATE TRIGGER tiles_count_insert AFTER INSERT ON tiles
BEGIN
    UPDATE scenes SET tiles_stored = tiles_stored + 1 WHERE id = NEW.scene_id;
END;

CREATE TRIGGER tiles_count_delete AFTER DELETE ON tiles
BEGIN
    UPDATE scenes SET tiles_stored = tiles_stored - 1 WHERE id = OLD.scene_id;
END;

CREATE TRIGGER tiles_count_update AFTER UPDATE OF scene_id ON tiles
WHEN OLD.scene_id != NEW.scene_id
BEGIN
    UPDATE scenes SET tiles_stored = tiles_stored - 1 WHERE id = OLD.scene_id;
    UPDATE scenes SET tiles_stored = tiles_stored + 1 WHERE id = NEW.scene_id;
END;

INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES
('tiles', 'features', 'tiles', 'rsclip tile footprints (WGS 84)', 4326),
('scenes', 'attributes', 'scenes', 'rsclip indexed scenes', NULL);

INSERT INTO gpkg_geometry_columns VALUES ('tiles', 'geom', 'POLYGON', 4326, 0, 0);

-- R-tree spatial index extension (GeoPackage 1.3 Annex F.3), id = tiles.fid.
CREATE VIRTUAL TABLE rtree_tiles_geom USING rtree(id, minx, maxx, miny, maxy);

INSERT INTO gpkg_extensions VALUES
('tiles', 'geom', 'gpkg_rtree_index', 'http://www.geopackage.org/spec120/#extension_rtree', 'write-only');

CREATE TRIGGER rtree_tiles_geom_insert AFTER INSERT ON tiles
WHEN (new.geom NOT NULL AND NOT ST_IsEmpty(NEW.geom))
BEGIN
    INSERT OR REPLACE INTO rtree_tiles_geom VALUES (
        NEW.fid, ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom));
END;

CREATE TRIGGER rtree_tiles_geom_update1 AFTER UPDATE OF geom ON tiles
WHEN OLD.fid = NEW.fid AND (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom))
BEGIN
    INSERT OR REPLACE INTO rtree_tiles_geom VALUES (
        NEW.fid, ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom));
END;

CREATE TRIGGER rtree_tiles_geom_update2 AFTER UPDATE OF geom ON tiles
WHEN OLD.fid = NEW.fid AND (NEW.geom IS NULL OR ST_IsEmpty(NEW.geom))
BEGIN
    DELETE FROM rtree_tiles_geom WHERE id = OLD.fid;
END;

CREATE TRIGGER rtree_tiles_geom_update3 AFTER UPDATE ON tiles
WHEN OLD.fid != NEW.fid AND (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom))
BEGIN
    DELETE FROM rtree_tiles_geom WHERE id = OLD.fid;
    INSERT OR REPLACE INTO rtree_tiles_geom VALUES (
        NEW.fid, ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom));
END;

CREATE TRIGGER rtree_tiles_geom_update4 AFTER UPDATE ON tiles
WHEN OLD.fid != NEW.fid AND (NEW.geom IS NULL OR ST_IsEmpty(NEW.geom))
BEGIN
    DELETE FROM rtree_tiles_geom WHERE id IN (OLD.fid, NEW.fid);
END;

CREATE TRIGGER rtree_tiles_geom_delete AFTER DELETE ON tiles
WHEN old.geom NOT NULL
BEGIN
    DELETE FROM rtree_tiles_geom WHERE id = OLD.fid;
END;

INSERT INTO rsclip_meta (key, value) VALUES
('format', 'rsclip-index'),
('dtype', 'float32'),
('n_embeddings', '0'),
('created_at', strftime('%Y-%m-%dT%H:%M:%fZ','now'));

INSERT OR REPLACE INTO rsclip_meta (key, value) VALUES ('schema_version', '1');
