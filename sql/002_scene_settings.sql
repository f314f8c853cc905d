-- rsclip index schema, version 2: a scene's identity is its file state AND the settings it was
-- tiled with, and the tile grid is recorded instead of guessed.
--
-- scenes gains:
--   settings    canonical JSON of the tiling/scaling settings asked for (rsclip_tiler_settings):
--               tile_size, stride, bands, scale, pct, gsd, resampling, min_valid, mask, densify.
--               A run with other settings re-indexes the scene. NULL: indexed by schema 1, which
--               did not record them.
--   tile_size, stride   the grid in grid pixels (the heatmap and the plugin read it back)
--   src_width, src_height, src_bands   the source raster; after --gsd the grid (width, height)
--               is the resampled one and a window in source pixels is window * src / grid
--   georef      0 pixel coordinates (no geotransform), 1 geotransform without a usable CRS,
--               2 CRS (WGS84 footprints)
--   gsd         metres per grid pixel (NULL/0 unknown)
--
-- tiles: lon and lat become nullable, and geom may be NULL: tiles of scenes indexed in pixel
-- coordinates (--allow-pixel-coords) have no WGS84 position. SQLite cannot drop a NOT NULL
-- constraint in place, so the table is rebuilt (same columns, same fids: the R-tree and the
-- embeddings keep pointing at the right rows). The library runs this file with foreign keys off
-- (a DROP TABLE with them on would cascade into embeddings) inside one transaction, and checks
-- foreign_key_check before committing.

ALTER TABLE scenes ADD COLUMN settings TEXT;
ALTER TABLE scenes ADD COLUMN tile_size INTEGER;
ALTER TABLE scenes ADD COLUMN stride INTEGER;
ALTER TABLE scenes ADD COLUMN src_width INTEGER;
ALTER TABLE scenes ADD COLUMN src_height INTEGER;
ALTER TABLE scenes ADD COLUMN src_bands INTEGER;
ALTER TABLE scenes ADD COLUMN georef INTEGER;
ALTER TABLE scenes ADD COLUMN gsd DOUBLE;

CREATE TEMP TABLE rsclip_migrate_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'tiles';

CREATE TABLE tiles_v2 (
    fid INTEGER PRIMARY KEY AUTOINCREMENT,
    geom POLYGON,
    scene_id INTEGER NOT NULL REFERENCES scenes(id) ON DELETE CASCADE,
    xoff MEDIUMINT NOT NULL,
    yoff MEDIUMINT NOT NULL,
    xsize MEDIUMINT NOT NULL,
    ysize MEDIUMINT NOT NULL,
    valid_fraction REAL NOT NULL,
    lon DOUBLE,
    lat DOUBLE,
    ul_x DOUBLE, ul_y DOUBLE, ur_x DOUBLE, ur_y DOUBLE,
    lr_x DOUBLE, lr_y DOUBLE, ll_x DOUBLE, ll_y DOUBLE,
    CONSTRAINT uk_tiles_window UNIQUE (scene_id, xoff, yoff, xsize, ysize)
);

INSERT INTO tiles_v2 (fid, geom, scene_id, xoff, yoff, xsize, ysize, valid_fraction, lon, lat,
                      ul_x, ul_y, ur_x, ur_y, lr_x, lr_y, ll_x, ll_y)
SELECT fid, geom, scene_id, xoff, yoff, xsize, ysize, valid_fraction, lon, lat,
       ul_x, ul_y, ur_x, ur_y, lr_x, lr_y, ll_x, ll_y FROM tiles ORDER BY fid;

DROP TABLE tiles;
ALTER TABLE tiles_v2 RENAME TO tiles;

-- Never hand out a deleted tile's fid again (AUTOINCREMENT's promise survives the rebuild).
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM rsclip_migrate_seq), 0))
WHERE name = 'tiles';
DROP TABLE rsclip_migrate_seq;

-- The triggers of 001, recreated on the new table.
CREATE TRIGGER tiles_delete_embedding AFTER DELETE ON tiles
BEGIN
    DELETE FROM embeddings WHERE tile_id = OLD.fid;
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

INSERT OR REPLACE INTO rsclip_meta (key, value) VALUES ('schema_version', '2');
