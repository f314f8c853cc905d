-- rsclip index schema, version 3: when each scene was taken, and where a STAC catalogue put it.
--
-- scenes gains:
--   datetime          the acquisition instant, ISO 8601 UTC ("2021-05-27T11:21:21Z"), or NULL
--   start_datetime, end_datetime   an acquisition interval (end exclusive), when the scene spans
--                     one (a STAC item with start/end, a date without a time of day), else NULL
--   datetime_source   where the time came from: stac, option (--datetime), metadata (GDAL
--                     metadata such as TIFFTAG_DATETIME), name (--datetime-from-name); NULL when
--                     unknown (never guessed from the file's mtime)
--   stac_item, stac_collection, stac_asset   the STAC item id, its collection id and the asset
--                     key the scene was read from (scene path = the asset's href), else NULL
-- None of these are part of a scene's identity: a run that finds another time updates them in
-- place without re-embedding the tiles.

ALTER TABLE scenes ADD COLUMN datetime TEXT;
ALTER TABLE scenes ADD COLUMN start_datetime TEXT;
ALTER TABLE scenes ADD COLUMN end_datetime TEXT;
ALTER TABLE scenes ADD COLUMN datetime_source TEXT;
ALTER TABLE scenes ADD COLUMN stac_item TEXT;
ALTER TABLE scenes ADD COLUMN stac_collection TEXT;
ALTER TABLE scenes ADD COLUMN stac_asset TEXT;

INSERT OR REPLACE INTO rsclip_meta (key, value) VALUES ('schema_version', '3');
