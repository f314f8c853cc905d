#!/usr/bin/env node
// ONNX Runtime (onnxruntime-node) baseline: images/s and texts/s of the ONNX export of the torch
// SigLIP towers (export_onnx.py), same weights and shapes as rsclip's benchmark.
//
//   cd tests/bench/baselines && npm install --ignore-scripts --no-save onnxruntime-node
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE node bench_ort.js ../out/base224 \
//       [--threads 1,2] [--batches 1,8,32] [--text-batches 1,32] [--min-time 3]
//
// Sessions: intraOpNumThreads = T, interOpNumThreads = 1, sequential execution, all graph
// optimizations. Before timing, each tower's output on the export's check input is compared with
// the torch output (max abs diff / max abs value); the run stops if it exceeds 1e-4.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
    const a = { threads: [1, 2], batches: [1, 8, 32], textBatches: [1, 32], minTime: 3 };
    const ints = (s) => s.split(',').filter((x) => x).map(Number);
    for (let i = 0; i < argv.length; i++) {
        const k = argv[i];
        if (k === '--threads') a.threads = ints(argv[++i]);
        else if (k === '--batches') a.batches = ints(argv[++i]);
        else if (k === '--text-batches') a.textBatches = ints(argv[++i]);
        else if (k === '--min-time') a.minTime = Number(argv[++i]);
        else if (!a.dir) a.dir = k;
        else throw new Error(`unknown argument ${k}`);
    }
    if (!a.dir) throw new Error('usage: node bench_ort.js MODEL_DIR [--threads 1,2] ...');
    return a;
}

function readBin(dir, name, info) {
    const buf = fs.readFileSync(path.join(dir, `check_${name}.bin`));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    return info.dtype === 'int64' ? new BigInt64Array(ab) : new Float32Array(ab);
}

function relErr(got, want) {
    let md = 0, mx = 0;
    for (let i = 0; i < want.length; i++) {
        md = Math.max(md, Math.abs(got[i] - want[i]));
        mx = Math.max(mx, Math.abs(want[i]));
    }
    return md / mx;
}

async function timed(fn, minTime, minRuns = 3, maxRuns = 50) {
    await fn(); // warm-up
    const times = [];
    const cpu = [];
    let total = 0;
    while ((total < minTime || times.length < minRuns) && times.length < maxRuns) {
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        await fn();
        const dt = Number(process.hrtime.bigint() - t0) * 1e-9;
        const dc = process.cpuUsage(c0);
        times.push(dt);
        cpu.push((dc.user + dc.system) * 1e-6);
        total += dt;
    }
    const med = (v) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
    return { median: med(times), best: Math.min(...times), n: times.length, cpu: med(cpu) };
}

async function main() {
    const a = parseArgs(process.argv.slice(2));
    const check = JSON.parse(fs.readFileSync(path.join(a.dir, 'check.json'), 'utf8'));
    const cfg = JSON.parse(fs.readFileSync(path.join(a.dir, 'config.json'), 'utf8'));
    const vis = cfg.vision_config || {};
    const txt = cfg.text_config || {};
    const S = vis.image_size || 224;
    const T = txt.max_position_embeddings || 64;
    const vocab = txt.vocab_size || 32000;
    const ver = require('onnxruntime-node/package.json').version;
    console.log(`onnxruntime-node ${ver}, model ${a.dir}: image ${S}px, text ${T} tokens`);
    let seed = 12345;
    const rnd = () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
    };
    for (const threads of a.threads) {
        const opts = {
            intraOpNumThreads: threads,
            interOpNumThreads: 1,
            executionMode: 'sequential',
            graphOptimizationLevel: 'all',
        };
        for (const tower of ['vision', 'text']) {
            const batches = tower === 'vision' ? a.batches : a.textBatches;
            if (batches.length === 0) continue;
            const sess = await ort.InferenceSession.create(path.join(a.dir, `${tower}.onnx`), opts);
            const inName = tower === 'vision' ? 'pixel_values' : 'input_ids';
            const outName = tower === 'vision' ? 'image_embeds' : 'text_embeds';
            const ci = check[inName];
            const cin = readBin(a.dir, inName, ci);
            const cout = readBin(a.dir, outName, check[outName]);
            const r = await sess.run({
                [inName]: new ort.Tensor(ci.dtype === 'int64' ? 'int64' : 'float32', cin, ci.shape),
            });
            const err = relErr(r[outName].data, cout);
            console.log(`ort ${tower} threads=${threads}: check vs torch max rel err ${err.toExponential(2)}`);
            if (!(err <= 1e-4)) throw new Error(`${tower}: ONNX output differs from torch`);
            for (const b of batches) {
                let feed;
                if (tower === 'vision') {
                    const x = new Float32Array(b * 3 * S * S);
                    for (let i = 0; i < x.length; i++) x[i] = rnd() * 2 - 1;
                    feed = { pixel_values: new ort.Tensor('float32', x, [b, 3, S, S]) };
                } else {
                    const x = new BigInt64Array(b * T);
                    for (let i = 0; i < x.length; i++) x[i] = BigInt(Math.floor(rnd() * vocab));
                    feed = { input_ids: new ort.Tensor('int64', x, [b, T]) };
                }
                const t = await timed(() => sess.run(feed), a.minTime);
                const unit = tower === 'vision' ? 'images/s' : 'texts/s';
                console.log(`ort   ${tower.padEnd(6)} f32  threads=${threads} batch=${String(b).padStart(3)}: ` +
                    `${(b / t.median).toFixed(2).padStart(7)} ${unit} (median of ${t.n}; best ${(b / t.best).toFixed(2)}; ` +
                    `by CPU time ${((b * threads) / t.cpu).toFixed(2)})`);
                console.log('RESULT ' + JSON.stringify({ engine: 'ort', tower, dtype: 'f32', threads, batch: b,
                    per_s_median: b / t.median, per_s_best: b / t.best, per_s_cpu: (b * threads) / t.cpu }));
            }
            if (sess.release) await sess.release();
        }
    }
}

main().catch((e) => {
    console.error(`bench_ort: ${e.message}`);
    process.exit(1);
});
