"""The OGRLayer contract, as GDAL's test_ogrsf checks it (Debian ships no test_ogrsf): the checks
of one layer (check_layer) and of one dataset's layers (check_dataset), shared by the tests of an
index file (test_plugin_layers.py) and of a sharded folder (test_plugin_folder.py).

Import after reexec_with_preload(): importing osgeo loads the plugin."""
import math

from osgeo import gdal, ogr

from plugin_common import check

errors = []


def handler(cls, num, msg):
    if cls >= gdal.CE_Warning:
        errors.append(msg)


def install_handler():
    """Collect warnings and errors into `errors` (quiet() checks there are none)."""
    gdal.PushErrorHandler(handler)


def quiet(what, fn):
    """fn() must emit no warning or error."""
    del errors[:]
    r = fn()
    check(not errors, "%s: no error message%s" % (what, (": " + errors[0]) if errors else ""))
    return r


def key(f):
    """Everything a feature holds (FID, fields, geometry as WKB)."""
    if f is None:
        return None
    g = f.GetGeometryRef()
    return (f.GetFID(), tuple(f.GetField(i) for i in range(f.GetFieldCount())),
            bytes(g.ExportToWkb()) if g else None)


def read_all(lyr):
    lyr.ResetReading()
    out = []
    while True:
        f = lyr.GetNextFeature()
        if f is None:
            return out
        out.append(key(f))


def envelope_poly(e, grow=0.0):
    x0, x1, y0, y1 = e[0] - grow, e[1] + grow, e[2] - grow, e[3] + grow
    return ogr.CreateGeometryFromWkt("POLYGON((%.17g %.17g,%.17g %.17g,%.17g %.17g,%.17g %.17g,"
                                     "%.17g %.17g))" % (x0, y0, x1, y0, x1, y1, x0, y1, x0, y0))


def field_list(lyr):
    """A layer's fields as (name, type name), in order."""
    d = lyr.GetLayerDefn()
    return [(d.GetFieldDefn(i).GetName(), ogr.GetFieldTypeName(d.GetFieldDefn(i).GetType()))
            for i in range(d.GetFieldCount())]


def check_fields(lyr, ref_path, tag):
    """The layer's fields (names, types, order) = those of the layer `rsclip search -o REF.gpkg`
    wrote: the driver's layers and the CLI's exports carry the same properties."""
    ref = gdal.OpenEx(ref_path, gdal.OF_VECTOR, allowed_drivers=["GPKG"])
    want = field_list(ref.GetLayer(0)) if ref else None
    got = field_list(lyr) if lyr else None
    check(want is not None and got == want,
          "%s: fields = rsclip search's export %s" % (tag, [n for n, _ in (got or [])]))


def check_layer(ds, name, tag):
    lyr = ds.GetLayerByName(name)
    if not check(lyr is not None, "%s: layer %s" % (tag, name)):
        return
    t = "%s %s" % (tag, name)
    defn = lyr.GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    gtype = defn.GetGeomType()

    # ---- sequential reading, counts ----
    feats = quiet(t + " read", lambda: read_all(lyr))
    n = len(feats)
    check(n > 0, "%s: has features (%d)" % (t, n))
    fids = [k[0] for k in feats]
    check(len(set(fids)) == n and all(fid >= 1 for fid in fids), "%s: distinct FIDs" % t)
    check(read_all(lyr) == feats, "%s: a second reading gives the same features" % t)
    check(lyr.GetFeatureCount(True) == n and lyr.GetFeatureCount(False) in (n, -1),
          "%s: GetFeatureCount(force, not force) = %d" % (t, n))
    check(lyr.TestCapability(ogr.OLCFastFeatureCount) in (0, 1), "%s: OLCFastFeatureCount" % t)
    lyr.ResetReading()
    a = key(lyr.GetNextFeature())
    check(lyr.GetFeatureCount() == n and key(lyr.GetNextFeature()) == (feats + [None])[1],
          "%s: GetFeatureCount does not move the reading" % t)
    lyr.ResetReading()
    check(key(lyr.GetNextFeature()) == a == feats[0], "%s: ResetReading starts again" % t)

    # ---- random read: ignores both filters; missing FIDs are None, quietly ----
    check(lyr.TestCapability(ogr.OLCRandomRead), "%s: OLCRandomRead" % t)
    check(all(key(lyr.GetFeature(k[0])) == k for k in feats[:5] + feats[-3:]),
          "%s: GetFeature(fid) = the feature read sequentially" % t)
    for bad in [-1, 0, max(fids) + 1, 10 ** 9, 2 ** 62]:
        got = quiet("%s: GetFeature(%d)" % (t, bad), lambda: lyr.GetFeature(bad))
        check(got is None, "%s: GetFeature(%d) is None" % (t, bad))
    geo = [k for k in feats if k[2] is not None]  # tiles in pixel coordinates have none
    first_env = ogr.CreateGeometryFromWkb(geo[0][2]).GetEnvelope()
    far = ogr.CreateGeometryFromWkt("POLYGON((170 -80,171 -80,171 -79,170 -79,170 -80))")
    lyr.SetSpatialFilter(far)
    check(lyr.GetFeatureCount() == 0 and read_all(lyr) == [],
          "%s: a spatial filter far away selects nothing" % t)
    check(key(lyr.GetFeature(fids[0])) == feats[0], "%s: GetFeature ignores the spatial filter" % t)
    lyr.SetSpatialFilter(None)
    lyr.SetAttributeFilter("0 = 1")
    check(lyr.GetFeatureCount() == 0 and read_all(lyr) == [],
          "%s: attribute filter 0 = 1 selects nothing" % t)
    check(key(lyr.GetFeature(fids[-1])) == feats[-1],
          "%s: GetFeature ignores the attribute filter" % t)
    lyr.SetAttributeFilter(None)
    check(read_all(lyr) == feats, "%s: clearing the filters restores every feature" % t)

    # ---- attribute filters ----
    col = fields[0]
    lyr.ResetReading()
    v = lyr.GetFeature(fids[n // 2]).GetField(col)
    lyr.SetAttributeFilter("%s = %r" % (col, v) if isinstance(v, str) else "%s = %.17g" % (col, v))
    sel = read_all(lyr)
    want = [k for k in feats if k[1][0] == v]
    check(sel == want and lyr.GetFeatureCount() == len(want) and len(want) >= 1,
          "%s: attribute filter %s = value (%d)" % (t, col, len(want)))
    check(not lyr.TestCapability(ogr.OLCFastFeatureCount) or lyr.GetFeatureCount(False) == len(want),
          "%s: OLCFastFeatureCount holds under a filter" % t)
    lyr.SetAttributeFilter(None)

    # ---- SetNextByIndex ----
    for i in sorted({i for i in (0, 1, 3, n // 2, n - 1) if i < n}):
        err = lyr.SetNextByIndex(i)
        check(err == 0 and key(lyr.GetNextFeature()) == feats[i],
              "%s: SetNextByIndex(%d) then the %d-th feature" % (t, i, i))
    check(lyr.SetNextByIndex(n) == 0 and lyr.GetNextFeature() is None,
          "%s: SetNextByIndex(count) is the end" % t)
    for bad in [n + 1, 10 ** 12, -1, -10]:
        err = quiet("%s: SetNextByIndex(%d)" % (t, bad), lambda: lyr.SetNextByIndex(bad))
        check(err != 0 and lyr.GetNextFeature() is None,
              "%s: SetNextByIndex(%d) fails and the reading is over" % (t, bad))
    lyr.SetAttributeFilter("%s <> %s" % (fields[0], "'x'" if isinstance(v, str) else "-12345"))
    check(lyr.SetNextByIndex(n - 1) == 0 and key(lyr.GetNextFeature()) == feats[n - 1],
          "%s: SetNextByIndex through an attribute filter" % t)
    lyr.SetAttributeFilter(None)

    # ---- spatial filters ----
    inc = envelope_poly(first_env, 1e-9)
    lyr.SetSpatialFilter(inc)
    got = [k[0] for k in read_all(lyr)]
    check(geo[0][0] in got and lyr.GetFeatureCount() == len(got),
          "%s: spatial filter on a feature's envelope returns it (%d)" % (t, len(got)))
    check(all(ogr.CreateGeometryFromWkb(k[2]).Intersects(inc) for k in read_all(lyr)),
          "%s: every feature returned meets the filter" % t)
    lyr.SetSpatialFilter(0, inc)
    check([k[0] for k in read_all(lyr)] == got, "%s: SetSpatialFilter(0, g) = SetSpatialFilter(g)" % t)
    for bad in [1, -1]:
        del errors[:]
        lyr.SetSpatialFilter(bad, far)
        check(errors and [k[0] for k in read_all(lyr)] == got,
              "%s: SetSpatialFilter(%d, g) is an error and keeps the filter" % (t, bad))
    for what, lo, hi in [("infinite", -math.inf, math.inf), ("huge", -1e300, 1e300)]:
        lyr.SetSpatialFilterRect(lo, lo, hi, hi)
        got_all = quiet("%s: %s spatial filter" % (t, what), lambda: read_all(lyr))
        check(got_all == geo and lyr.GetFeatureCount() == len(geo),
              "%s: a %s spatial filter returns every feature with a geometry (%d)" % (
                  t, what, len(geo)))
    lyr.SetSpatialFilter(None)
    check(lyr.GetSpatialFilter() is None and read_all(lyr) == feats,
          "%s: SetSpatialFilter(None) restores every feature" % t)
    check(lyr.TestCapability(ogr.OLCFastSpatialFilter) in (0, 1), "%s: OLCFastSpatialFilter" % t)

    # ---- extent: the envelope of every feature, filters aside ----
    e = [math.inf, -math.inf, math.inf, -math.inf]
    for k in geo:
        fe = ogr.CreateGeometryFromWkb(k[2]).GetEnvelope()
        e = [min(e[0], fe[0]), max(e[1], fe[1]), min(e[2], fe[2]), max(e[3], fe[3])]
    ext = lyr.GetExtent(force=1)
    check(all(abs(ext[i] - e[i]) <= 1e-9 for i in range(4)),
          "%s: GetExtent = the envelope of the features %s" % (t, ext))
    lyr.SetSpatialFilter(inc)
    check(lyr.GetExtent(force=0) == ext, "%s: GetExtent is the layer's, filters aside" % t)
    lyr.SetSpatialFilter(None)
    del errors[:]
    check(lyr.GetExtent(force=1, can_return_null=True, geom_field=1) is None and errors,
          "%s: GetExtent of a missing geometry field fails" % t)
    check(lyr.TestCapability(ogr.OLCFastGetExtent), "%s: OLCFastGetExtent" % t)

    # ---- strings, capabilities, definition ----
    if lyr.TestCapability(ogr.OLCStringsAsUTF8):
        ok = True
        for fid in fids:
            f = lyr.GetFeature(fid)
            for i in range(f.GetFieldCount()):
                if f.GetFieldType(i) == ogr.OFTString:
                    try:
                        f.GetFieldAsBinary(i).decode("utf-8")
                    except UnicodeDecodeError:
                        ok = False
        check(ok, "%s: OLCStringsAsUTF8 holds" % t)
    for cap in [ogr.OLCSequentialWrite, ogr.OLCRandomWrite, ogr.OLCCreateField,
                ogr.OLCDeleteFeature, ogr.OLCDeleteField, ogr.OLCTransactions]:
        check(not lyr.TestCapability(cap), "%s: no %s" % (t, cap))
    check(not lyr.TestCapability("fake_capability"), "%s: unknown capability is false" % t)
    check(lyr.GetLayerDefn().GetFieldCount() == len(fields) and
          lyr.GetLayerDefn().GetGeomType() == gtype and lyr.GetName() == name and
          lyr.GetGeomType() == gtype and lyr.GetSpatialRef() is not None and
          lyr.GetSpatialRef().GetAuthorityCode(None) == "4326",
          "%s: stable definition (%d fields, geometry %s, EPSG:4326)" % (
              t, len(fields), ogr.GeometryTypeToName(gtype)))
    del errors[:]
    f = lyr.GetFeature(fids[0])
    check(lyr.SetFeature(f) != 0 and lyr.CreateFeature(f) != 0 and lyr.DeleteFeature(fids[0]) != 0
          and errors and all("read-only" in m for m in errors), "%s: writes refused clearly" % t)

    # ---- SQL on the layer ----
    sq = ds.ExecuteSQL('SELECT * FROM "%s"' % name)
    check(sq is not None and read_all(sq) == feats, "%s: OGRSQL SELECT * = the layer" % t)
    if sq:
        ds.ReleaseResultSet(sq)
    sq = ds.ExecuteSQL('SELECT * FROM "%s" WHERE "%s" = %s' % (
        name, col, ("'%s'" % v.replace("'", "''")) if isinstance(v, str) else "%.17g" % v))
    check(sq is not None and [k[0] for k in read_all(sq)] == [k[0] for k in want],
          "%s: OGRSQL WHERE" % t)
    if sq:
        ds.ReleaseResultSet(sq)
    del errors[:]
    sq = ds.ExecuteSQL('SELECT COUNT(*) AS n, MIN(a.%s) FROM "%s" a JOIN "%s" b ON a.%s = b.%s'
                       % (fields[1], name, name, fields[1], fields[1]), dialect="SQLITE")
    row = sq.GetNextFeature() if sq else None
    check(row is not None and row.GetField("n") >= n and not errors,
          "%s: SQLite dialect self-join (two cursors on the layer)%s" % (
              t, (": " + errors[0]) if errors else ""))
    if sq:
        ds.ReleaseResultSet(sq)
    return feats


def check_dataset(name, opts, layers, tag):
    ds = quiet(tag + ": open", lambda: gdal.OpenEx(name, gdal.OF_VECTOR, open_options=opts))
    if not check(ds is not None, "%s: opens" % tag):
        return {}
    check([ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())] == layers and
          ds.GetLayer(-1) is None and ds.GetLayer(len(layers)) is None and
          ds.GetLayerByName("nope") is None, "%s: layers %s" % (tag, layers))
    out = {}
    for lname in layers:
        out[lname] = check_layer(ds, lname, tag)
    # interleaved reading of every pair of layers
    for i, a in enumerate(layers):
        for b in layers[i + 1:]:
            la, lb = ds.GetLayerByName(a), ds.GetLayerByName(b)
            la.ResetReading()
            lb.ResetReading()
            ga, gb = [], []
            while True:
                fa, fb = la.GetNextFeature(), lb.GetNextFeature()
                if fa is None and fb is None:
                    break
                if fa:
                    ga.append(key(fa))
                if fb:
                    gb.append(key(fb))
            check(ga == out[a] and gb == out[b], "%s: interleaved reading of %s and %s" % (tag, a, b))
    # the dataset's name reopens the same dataset (GDAL does so, e.g. for a second SQL cursor)
    ds2 = gdal.OpenEx(ds.GetDescription(), gdal.OF_VECTOR)
    check(ds2 is not None and all(ds2.GetLayerByName(l) is not None and
                                  read_all(ds2.GetLayerByName(l)) == out[l] for l in layers),
          "%s: its name %s reopens it" % (tag, ds.GetDescription()[-60:]))
    ds2 = None
    # an update-mode open works (ogrinfo -sql asks for it), the layers stay read-only
    ds3 = quiet(tag + ": update-mode open",
                lambda: gdal.OpenEx(name, gdal.OF_VECTOR | gdal.OF_UPDATE, open_options=opts))
    check(ds3 is not None and ds3.GetLayerCount() == len(layers) and
          ds3.GetLayer(0).TestCapability(ogr.OLCSequentialWrite) == 0,
          "%s: opens in update mode, read-only" % tag)
    return out
