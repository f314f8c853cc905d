// rsclip serve: the web app. Search box, map (Leaflet, imagery from /tiles), gallery of the hits,
// "more like this" / "not this" (tile examples), downloads. State lives in the URL's query string
// (the arguments of /api/search), so a link reruns the same search.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { q: '', not: [], template: '', k: 20, min_prob: '', bbox: null, like: [], unlike: [] };
  let info = null;
  let map = null;
  let hitsLayer = null;
  const footprints = new Map(); // tile id -> Leaflet layer

  // Probability colours (as the contact sheet): dark blue -> teal -> yellow.
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function ramp(t) {
    t = !(t > 0) ? 0 : t > 1 ? 1 : t;
    const f = t * 4, i = Math.min(3, Math.floor(f)), u = f - i;
    const c = STOPS[i].map((v, k) => Math.round(v + (STOPS[i + 1][k] - v) * u));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  function ids(list) {
    return list.map(Number).filter((n) => Number.isInteger(n) && n > 0);
  }

  function fromUrl() {
    const p = new URLSearchParams(location.search);
    state.q = p.get('q') || '';
    state.not = p.getAll('not').filter((t) => t.trim());
    state.template = p.get('template') || '';
    state.k = Number(p.get('k')) || 20;
    state.min_prob = p.get('min_prob') || '';
    state.bbox = p.get('bbox');
    state.like = ids(p.getAll('like'));
    state.unlike = ids(p.getAll('unlike'));
  }

  function params() {
    const p = new URLSearchParams();
    if (state.q) p.set('q', state.q);
    state.not.forEach((t) => p.append('not', t));
    if (state.template) p.set('template', state.template);
    p.set('k', String(state.k));
    if (state.min_prob !== '') p.set('min_prob', state.min_prob);
    if (state.bbox) p.set('bbox', state.bbox);
    state.like.forEach((i) => p.append('like', String(i)));
    state.unlike.forEach((i) => p.append('unlike', String(i)));
    return p;
  }

  function toForm() {
    $('q').value = state.q;
    $('not').value = state.not.join(', ');
    $('template').value = state.template;
    $('k').value = state.k;
    $('min_prob').value = state.min_prob;
    $('inview').checked = !!state.bbox;
  }

  function fromForm() {
    state.q = $('q').value.trim();
    state.not = $('not').value.split(',').map((t) => t.trim()).filter((t) => t);
    state.template = $('template').value.trim();
    state.k = Math.max(1, Math.min(info ? info.max_k : 1000, Number($('k').value) || 20));
    state.min_prob = $('min_prob').value;
    state.bbox = $('inview').checked && map ? viewBox() : null;
  }

  function viewBox() {
    const b = map.getBounds();
    const c = (v, lo, hi) => Math.max(lo, Math.min(hi, v)).toFixed(6);
    return [c(b.getWest(), -180, 180), c(b.getSouth(), -90, 90), c(b.getEast(), -180, 180),
            c(b.getNorth(), -90, 90)].join(',');
  }

  function setStatus(text, kind) {
    $('status').textContent = text;
    document.body.dataset.state = kind;
  }

  function renderExamples() {
    const box = $('examples');
    box.textContent = '';
    const add = (id, kind) => {
      const span = document.createElement('span');
      span.className = 'example ' + kind;
      span.dataset.tileId = id;
      span.textContent = (kind === 'like' ? 'like tile ' : 'not like tile ') + id;
      const x = document.createElement('button');
      x.type = 'button';
      x.title = 'remove';
      x.textContent = '\u00d7';
      x.addEventListener('click', () => {
        state[kind] = state[kind].filter((t) => t !== id);
        renderExamples();
        search();
      });
      span.appendChild(x);
      box.appendChild(span);
    };
    state.like.forEach((id) => add(id, 'like'));
    state.unlike.forEach((id) => add(id, 'unlike'));
  }

  function select(tileId, zoom) {
    document.querySelectorAll('.hit.selected').forEach((e) => e.classList.remove('selected'));
    const fig = document.querySelector(`.hit[data-tile-id="${tileId}"]`);
    if (fig) fig.classList.add('selected');
    const layer = footprints.get(tileId);
    if (layer && zoom) map.fitBounds(layer.getBounds(), { maxZoom: 18, padding: [40, 40] });
    if (fig && !zoom) fig.scrollIntoView({ block: 'nearest' });
  }

  function example(kind, tileId) {
    const other = kind === 'like' ? 'unlike' : 'like';
    state[other] = state[other].filter((t) => t !== tileId);
    if (!state[kind].includes(tileId)) state[kind].push(tileId);
    renderExamples();
    search();
  }

  function hitElement(f, lo, hi) {
    const p = f.properties;
    const fig = document.createElement('figure');
    fig.className = 'hit';
    fig.dataset.rank = p.rank;
    fig.dataset.tileId = p.tile_id;
    fig.dataset.prob = p.prob;
    fig.style.borderColor = ramp(hi > lo ? (p.prob - lo) / (hi - lo) : 1);
    const img = document.createElement('img');
    img.src = `/api/chip/${p.tile_id}.png`;
    img.alt = `tile ${p.tile_id}`;
    img.loading = 'lazy';
    fig.appendChild(img);
    const cap = document.createElement('figcaption');
    const line = document.createElement('div');
    line.textContent = `#${p.rank}  p=${p.prob.toFixed(4)}`;
    const scene = document.createElement('div');
    scene.className = 'scene';
    scene.textContent = String(p.scene).split('/').pop();
    scene.title = p.scene;
    cap.append(line, scene);
    fig.appendChild(cap);
    const actions = document.createElement('div');
    actions.className = 'actions';
    for (const [kind, label] of [['like', 'more like this'], ['unlike', 'not this']]) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = kind;
      b.textContent = label;
      b.addEventListener('click', (e) => {
        e.stopPropagation();
        example(kind, p.tile_id);
      });
      actions.appendChild(b);
    }
    fig.appendChild(actions);
    fig.addEventListener('click', () => select(p.tile_id, true));
    return fig;
  }

  function render(fc, why) {
    const gallery = $('gallery');
    gallery.textContent = '';
    hitsLayer.clearLayers();
    footprints.clear();
    const feats = fc.features || [];
    const probs = feats.map((f) => f.properties.prob);
    const lo = Math.min(...probs), hi = Math.max(...probs);
    for (let i = feats.length - 1; i >= 0; i--) { // the best drawn last, on top
      const f = feats[i];
      if (!f.geometry) continue;
      const color = ramp(hi > lo ? (f.properties.prob - lo) / (hi - lo) : 1);
      const layer = L.featureGroup([
        L.geoJSON(f, { style: { color, weight: 2, fillOpacity: 0.25 } }),
        // a dot keeps a hit visible when its footprint is a few pixels across at this zoom
        L.circleMarker([f.properties.lat, f.properties.lon],
          { radius: 5, color: '#333', weight: 1, fillColor: color, fillOpacity: 0.9 }),
      ]);
      layer.bindTooltip(`#${f.properties.rank}  p=${f.properties.prob.toFixed(4)}`);
      layer.on('click', () => select(f.properties.tile_id, false));
      layer.addTo(hitsLayer);
      footprints.set(f.properties.tile_id, layer);
    }
    for (const f of feats) gallery.appendChild(hitElement(f, lo, hi));
    const n = feats.length;
    setStatus(n ? `${n} hit${n === 1 ? '' : 's'}` : `no hits: ${why || 'none found'}`, 'done');
  }

  async function search() {
    if (!state.q && !state.like.length) {
      setStatus('Type what to look for, or pick example tiles.', 'idle');
      return;
    }
    const p = params();
    history.replaceState(null, '', '?' + p.toString());
    setStatus('searching\u2026', 'busy');
    let body = null, resp = null;
    try {
      resp = await fetch('/api/search?' + p.toString());
      body = await resp.json();
    } catch (e) {
      setStatus('search failed: ' + e, 'error');
      return;
    }
    if (!resp.ok) {
      setStatus(body && body.error ? body.error : `search failed (${resp.status})`, 'error');
      return;
    }
    let why = resp.headers.get('X-Rsclip-Why-Empty');
    try {
      why = why ? decodeURIComponent(why) : '';
    } catch (e) {
      why = '';
    }
    render(body, why);
    $('dl-geojson').href = '/api/search?' + p.toString() + '&format=geojson';
    $('dl-gpkg').href = '/api/search?' + p.toString() + '&format=gpkg';
    $('downloads').hidden = false;
    if (hitsLayer.getLayers().length && !state.bbox)
      map.fitBounds(hitsLayer.getBounds(), { maxZoom: 16, padding: [20, 20] });
  }

  async function start() {
    fromUrl();
    toForm();
    renderExamples();
    try {
      info = await (await fetch('/api/info')).json();
    } catch (e) {
      setStatus('cannot reach the server: ' + e, 'error');
      return;
    }
    $('template').placeholder = info.template;
    $('k').max = info.max_k;
    map = L.map('map', { worldCopyJump: true });
    L.tileLayer('/tiles/{z}/{x}/{y}.png', {
      maxZoom: Math.min(22, info.max_zoom),
      attribution: `${info.scenes} scene${info.scenes === 1 ? '' : 's'} of ${info.index}, drawn by GDAL`,
    }).addTo(map);
    hitsLayer = L.featureGroup().addTo(map);
    if (info.extent) map.fitBounds([[info.extent[1], info.extent[0]], [info.extent[3], info.extent[2]]]);
    else map.setView([0, 0], 1);
    $('search').addEventListener('submit', (e) => {
      e.preventDefault();
      fromForm();
      search();
    });
    setStatus(`${info.tiles} tiles indexed`, 'idle');
    if (state.q || state.like.length) await search();
  }

  start();
})();
